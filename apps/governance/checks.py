"""Governance in the run pipeline (apps.runs.pipeline): inputs are scanned before a run is
stored (a block keeps it from ever being sent), outputs before it completes (a quarantine
withholds its result), under the session's active policy version.

The inline input scan is the rules alone. Under a policy with `scan_inputs_model`, a run whose
payload has text is also stored `held` and its full scan (rules and model) sent to the
inference queue; apps.governance.services.run_input_scan then releases, blocks or keeps it."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.governance.models import ReviewState
from apps.governance.policy import decide
from apps.governance.scanning import check_metric, scan_value, texts_of
from apps.governance.services import INPUT_SCAN_HOLD_REASON, findings_record, input_scan_request
from apps.policies.models import PolicyVersion
from apps.runs import pipeline
from apps.runs.models import Run, RunStatus

INPUT_CHECK = "governance.inputs"
INPUT_SCAN_CHECK = "governance.inputs_full_scan"
OUTPUT_CHECK = "governance.outputs"
# Durations of this many earlier runs of the same kind make the history an anomaly is judged on.
METRIC_HISTORY = 200


def _verdict(findings: list[dict[str, Any]], version: PolicyVersion, *, inputs: bool) -> pipeline.CheckResult:
    decision = decide(findings, version, inputs=inputs)
    if inputs:
        outcome = pipeline.Decision.BLOCK if decision.block else pipeline.Decision.ALLOW
    else:
        quarantined = decision.review == ReviewState.QUARANTINED
        outcome = pipeline.Decision.HOLD if quarantined else pipeline.Decision.ALLOW
    tagged = tuple({**finding, "policy_version": version.pk} for finding in findings)
    return pipeline.CheckResult(outcome, reason=decision.reason if outcome else "", findings=tagged)


def check_inputs(subject: pipeline.InputSubject) -> pipeline.CheckResult | None:
    version = subject.session.policy.active_version
    findings = scan_value(subject.payload, path="payload", source="input", kind=subject.kind)
    return _verdict(findings, version, inputs=True) if findings else None


def check_inputs_held_for_scan(subject: pipeline.InputSubject) -> pipeline.CheckResult | None:
    """Hold the run for the full scan when the policy asks for it and there is text to scan."""
    version = subject.session.policy.active_version
    if not version.scan_inputs_model or not texts_of(subject.payload, path="payload", kind=subject.kind):
        return None
    return pipeline.CheckResult(pipeline.Decision.HOLD, reason=INPUT_SCAN_HOLD_REASON)


def _request_scan(run: Run, result: pipeline.CheckResult) -> None:
    # a run the rules blocked already is not scanned again
    if run.status == RunStatus.HELD and run.hold_reason == INPUT_SCAN_HOLD_REASON:
        input_scan_request(run=run)


# kind -> (monotonic time read, durations newest first): each worker process reads a kind's
# history at most once every GOVERNANCE_METRIC_HISTORY_SECONDS, not on every completion.
_histories: dict[str, tuple[float, list[float]]] = {}


def _duration_history(run: Run) -> list[float]:
    now = time.monotonic()
    cached = _histories.get(run.kind)
    if cached is not None and now - cached[0] < settings.GOVERNANCE_METRIC_HISTORY_SECONDS:
        return cached[1]
    history = list(
        Run.objects.filter(kind=run.kind, status=RunStatus.SUCCEEDED, duration_seconds__isnull=False)
        .exclude(pk=run.pk)
        .order_by("-finished_at")
        .values_list("duration_seconds", flat=True)[:METRIC_HISTORY]
    )
    _histories[run.kind] = (now, history)
    return history


def check_outputs(subject: pipeline.OutputSubject) -> pipeline.CheckResult | None:
    run = subject.run
    version = run.session.policy.active_version
    findings = []
    if version.scan_outputs:
        findings += scan_value(subject.result, path="result", source="output", kind="")
    if run.started_at is not None:
        # started_at was written by this worker's clock when it started the run
        elapsed = (timezone.now() - run.started_at).total_seconds()
        if elapsed >= settings.GOVERNANCE_DURATION_MIN_SECONDS:
            # (shorter runs are not judged on their duration: at that scale it is a thread
            # switch or a cold import, and flagging it would fill the review queue)
            findings += check_metric(run.kind, "duration_seconds", elapsed, _duration_history(run))
    return _verdict(findings, version, inputs=False) if findings else None


def _record(run: Run, result: pipeline.CheckResult) -> None:
    version = PolicyVersion.objects.get(pk=result.findings[0]["policy_version"])
    findings = [{k: v for k, v in f.items() if k != "policy_version"} for f in result.findings]
    inputs = findings[0]["source"] == "input"
    decision = decide(findings, version, inputs=inputs)
    findings_record(trace=run.trace, findings=findings, version=version, decision=decision)


def register_checks() -> None:
    for name in (INPUT_CHECK, INPUT_SCAN_CHECK, OUTPUT_CHECK):
        pipeline.unregister_check(name)
    pipeline.register_input_check(pipeline.Check(name=INPUT_CHECK, check=check_inputs, record=_record))
    pipeline.register_input_check(
        pipeline.Check(name=INPUT_SCAN_CHECK, check=check_inputs_held_for_scan, record=_request_scan)
    )
    pipeline.register_output_check(pipeline.Check(name=OUTPUT_CHECK, check=check_outputs, record=_record))
