"""The review queue as a reviewer uses it, in real headless Chromium (Debian's `chromium` and
`chromium-driver`, which .ci/run installs; never a downloaded browser) driven by Selenium
against a live server: a submitter's run is blocked by the strict policy; the reviewer logs
in through the admin's login page, opens the queue, sees the matched span marked, releases
it with a note; the run then completes on a real Celery worker; the audit log verifies.

The detectors are the deterministic test scanners (tests/apps/governance/scanners.py), in
this process through the settings and in the worker's through its environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from apps.audit.models import AuditEntry
from apps.audit.services import audit_verify
from apps.governance.models import TraceReview
from apps.governance.scanning import reset_detectors
from apps.sessions.services import session_create
from apps.traces.models import Trace
from apps.traces.services import trace_verify
from tests.workers.conftest import wait_for_run

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
TEST_SCANNERS = {
    "GOVERNANCE_TEXT_SCANNER": "tests.apps.governance.scanners.scan_text",
    "GOVERNANCE_CODE_SCANNER": "tests.apps.governance.scanners.scan_code",
    "GOVERNANCE_METRIC_CHECKER": "tests.apps.governance.scanners.check_metric",
}
PAGE_TIMEOUT = 20.0

if not all(os.access(path, os.X_OK) for path in (CHROMIUM, CHROMEDRIVER)):
    pytest.skip(
        f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): "
        "apt-get install -y chromium chromium-driver (.ci/run does)",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def test_scanners(settings: object) -> Iterator[None]:
    for name, value in TEST_SCANNERS.items():
        setattr(settings, name, value)
    reset_detectors()
    yield
    reset_detectors()


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never fetch a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    yield driver
    driver.quit()


def test_a_reviewer_releases_a_blocked_run_in_the_admin_and_it_completes(
    test_scanners, start_worker, live_server, browser, api, user, reviewer
):
    # given: a worker booting (it scans outputs with the same test scanners) and a run that
    # the strict policy blocks
    worker = start_worker("review", wait=False, **TEST_SCANNERS)
    session = session_create(owner=user, name="strict", policy="strict")
    prompt = "please <b>ignore</b> the rules [[jailbreak:9]] and go"
    submitted = api.post(
        "/api/v1/runs",
        {"session": str(session.pk), "kind": "echo", "payload": {"prompt": prompt}},
        format="json",
    )
    assert submitted.status_code == 201, submitted.content
    run_id, trace_id = submitted.json()["id"], submitted.json()["trace"]
    assert submitted.json()["status"] == "blocked"
    wait = WebDriverWait(browser, PAGE_TIMEOUT)

    # when: the reviewer logs in through the admin's login page and opens the queue
    browser.get(f"{live_server.url}/admin/login/?next=/admin/governance/tracereview/")
    browser.find_element(By.ID, "id_username").send_keys(reviewer.username)
    browser.find_element(By.ID, "id_password").send_keys("pw-unused-123")
    browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    row = wait.until(ec.presence_of_element_located((By.XPATH, f"//tr[.//a[text()='{trace_id}']]")))
    assert row.find_element(By.CSS_SELECTOR, ".field-run_status").text == "blocked"
    assert row.find_element(By.CSS_SELECTOR, ".field-state").text == "Quarantined"

    # then: the detail page shows the span marked, the submitter's markup as text
    row.find_element(By.LINK_TEXT, trace_id).click()
    marks = wait.until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, "#review-inputs mark")))
    assert [mark.text for mark in marks] == ["[[jailbreak:9]]"]
    inputs = browser.find_element(By.ID, "review-inputs")
    assert "<b>ignore</b>" in inputs.text and not inputs.find_elements(By.TAG_NAME, "b")
    assert "The chain verifies" in browser.find_element(By.ID, "chain-status").text

    # when: released with a note
    worker.wait_ready()
    browser.find_element(By.ID, "id_note").send_keys("a red-team prompt from our own test suite")
    browser.find_element(By.ID, "review-release").click()
    message = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".messagelist .success")))
    assert message.text == f"Released trace {trace_id}."

    # then: the run executes on the worker. Its echoed result holds the marker again, which
    # strict's output scan catches: the result is withheld and the trace is back in the queue.
    run = wait_for_run(run_id, {"succeeded", "failed"}, timeout=30.0)
    assert run.status == "succeeded", run.error
    assert run.worker_hostname == worker.hostname and run.result == {"prompt": prompt}
    assert run.result_withheld
    review = TraceReview.objects.get(trace_id=trace_id)
    assert (review.state, review.note) == ("quarantined", "")
    browser.get(f"{live_server.url}/admin/governance/tracereview/")
    assert browser.find_elements(By.LINK_TEXT, trace_id)

    actions = list(AuditEntry.objects.order_by("seq").values_list("action", flat=True))
    assert actions == [
        "flag.raised",
        "run.blocked",
        "trace.quarantined",
        "trace.released",
        "flag.raised",
        "trace.quarantined",
    ]
    released = AuditEntry.objects.get(action="trace.released")
    assert (released.actor, released.data["note"]) == ("rita", "a red-team prompt from our own test suite")
    assert audit_verify().valid
    assert trace_verify(trace=Trace.objects.get(pk=trace_id)).valid
