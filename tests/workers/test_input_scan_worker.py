"""The full input scan on a real worker that serves only the inference queue: a run submitted
under a policy with `scan_inputs_model` is held, scanned there, and released or blocked. The
worker uses the test detectors (tests/apps/governance/scanners.py), so no model loads."""

from __future__ import annotations

import pytest

from apps.governance.models import Flag
from apps.policies.services import policy_approve, policy_create
from apps.runs.models import Run, RunStatus
from apps.sessions.services import session_create
from tests.workers.conftest import actions, submit, wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SCANNERS = {
    "GOVERNANCE_TEXT_SCANNER": "tests.apps.governance.scanners.scan_text",
    "GOVERNANCE_TEXT_BATCH_SCANNER": "tests.apps.governance.scanners.scan_texts",
}


def test_the_inference_worker_scans_held_runs_and_releases_or_blocks_them(
    api, user, reviewer, second_reviewer, start_worker
):
    policy = policy_create(
        user=reviewer, name="default-model", base="default", settings={"scan_inputs_model": True}
    )
    policy_approve(user=second_reviewer, policy_id=policy.pk)
    session = session_create(owner=user, name="scanned", policy=str(policy.pk))
    start_worker("scanner", queues="inference", **SCANNERS)

    benign = submit(api, session, "echo", {"prompt": "what is the boiling point of water"})
    # `{{...}}`: only the full scan sees it; severity 9 is the default policy's block_severity
    injected = submit(api, session, "echo", {"prompt": "hello there {{jailbreak:9}}"})

    # no cpu worker runs here: released means queued for one
    released = wait_for_run(benign, {RunStatus.QUEUED}, timeout=20)
    assert released.hold_reason == "" and "governance.input_scanned" in actions(benign)
    blocked = wait_for_run(injected, {RunStatus.BLOCKED}, timeout=20)
    assert "block_severity" in blocked.hold_reason
    assert Flag.objects.get(trace__run=blocked).detector == "test-model"
    assert Run.objects.filter(status=RunStatus.HELD).count() == 0
