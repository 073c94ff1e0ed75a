"""The dashboard as a person uses it, in real headless Chromium (Debian's `chromium` and
`chromium-driver`; never a downloaded browser) driven by Selenium, against a real gunicorn +
uvicorn server (the page's EventSource needs ASGI) and a real Celery worker: a user signs in,
submits a `sleep` run from the CLI (`limitgraph submit`), and sees its progress bar move and
finish on the page without reloading it; then its session's durations plot, drawn on the
worker, appears.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from apps.accounts.services import api_key_create
from apps.sessions.services import session_create
from tests.e2e.test_review_browser import browser  # noqa: F401  (the fixture; skips without chromium)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PAGE_TIMEOUT = 20.0
RUN_TIMEOUT = 60.0
SLEEP_SECONDS = 3


def _cli_submit(
    port: int, key: str, session: str, kind: str, payload: dict[str, object]
) -> dict[str, object]:
    """`limitgraph --json submit KIND --payload -` as a person would type it, in a subprocess."""
    env = {**os.environ, "LIMITGRAPH_URL": f"http://127.0.0.1:{port}", "LIMITGRAPH_API_KEY": key}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "limitgraph_cli",
            "--json",
            "submit",
            kind,
            "--payload",
            "-",
            "--session",
            session,
        ],
        input=json.dumps(payload),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_user_sees_a_runs_progress_move_and_finish_without_reloading(
    start_server: Callable[..., int],
    start_worker,
    browser,  # noqa: F811  (the fixture imported above)
    user,
):
    # given: a worker booting, the web server, and alice's session
    worker = start_worker("dashboard", wait=False)
    port = start_server()
    base = f"http://127.0.0.1:{port}"
    session = session_create(owner=user, name="experiments")
    _, key = api_key_create(user=user, name="cli")
    wait = WebDriverWait(browser, PAGE_TIMEOUT)

    # when: she signs in and lands on her dashboard
    browser.get(f"{base}/dashboard/")
    wait.until(ec.presence_of_element_located((By.ID, "login-form")))
    browser.find_element(By.ID, "id_username").send_keys(user.username)
    browser.find_element(By.ID, "id_password").send_keys("pw-unused-123")
    browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f'#runs[data-session="{session.pk}"]')))
    wait.until(lambda driver: driver.execute_script("return document.body.dataset.stream") == "open")
    browser.execute_script("window.notReloaded = true")

    # and submits a sleep run from the CLI
    worker.wait_ready()
    run_id = _cli_submit(port, key, str(session.pk), "sleep", {"seconds": SLEEP_SECONDS})["id"]

    # then: its row appears, and its bar moves and finishes, read as the page shows it
    row = f'#runs tr[data-run="{run_id}"]'
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, row)))
    seen: list[tuple[str, float]] = []
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        status, progress = browser.execute_script(
            "const row = document.querySelector(arguments[0]);"
            "return [row.dataset.status, Number(row.querySelector('.bar').dataset.progress)];",
            row,
        )
        if not seen or seen[-1] != (status, progress):
            seen.append((status, progress))
        if status in {"succeeded", "failed", "cancelled", "dead"}:
            break
        time.sleep(0.05)
    assert seen[-1] == ("succeeded", 1.0), seen
    moving = [progress for status, progress in seen if status == "running" and 0.0 < progress < 1.0]
    assert len(moving) >= 2, seen  # several steps between start and end, not a jump
    progress_seen = [progress for _, progress in seen]
    assert progress_seen == sorted(progress_seen), seen
    assert browser.find_element(By.CSS_SELECTOR, f"{row} .status").text == "succeeded"
    assert browser.find_element(By.CSS_SELECTOR, f"{row} .pct").text == "100%"
    assert browser.execute_script("return window.notReloaded") is True

    # and the session's durations plot, drawn on the worker once asked for, appears on the page
    plot = WebDriverWait(browser, 40).until(
        lambda driver: driver.execute_script(
            "const img = document.getElementById('durations-plot');"
            "return !img.hidden && img.complete && img.naturalWidth > 0 ? img.naturalWidth : null;"
        )
    )
    assert plot > 100
    assert browser.execute_script("return window.notReloaded") is True
