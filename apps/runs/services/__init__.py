"""Writes on runs, by subdomain: submission (submit, enqueue, release), lifecycle
(claim, heartbeat, complete, fail, cancel) and reconcile. Import from the
submodules; the names below are the package's public surface."""

from __future__ import annotations

from apps.runs.services.lifecycle import (
    ResultTooLarge,
    RunCancelled,
    RunLeaseLost,
    RunStopped,
    run_cancel,
    run_cancel_children,
    run_claim,
    run_complete,
    run_event_append,
    run_fail,
    run_heartbeat,
    run_mark_cancelled,
    run_provenance_append,
)
from apps.runs.services.reconcile import ReconcileReport, run_hand_back, run_reconcile
from apps.runs.services.submission import (
    RunRequest,
    run_enqueue,
    run_hold_decide,
    run_reject,
    run_release,
    run_requeue,
    run_submit,
    run_submit_batch,
)

__all__ = [
    "ReconcileReport",
    "ResultTooLarge",
    "RunCancelled",
    "RunLeaseLost",
    "RunRequest",
    "RunStopped",
    "run_cancel",
    "run_cancel_children",
    "run_claim",
    "run_complete",
    "run_enqueue",
    "run_event_append",
    "run_fail",
    "run_hand_back",
    "run_heartbeat",
    "run_hold_decide",
    "run_mark_cancelled",
    "run_provenance_append",
    "run_reconcile",
    "run_reject",
    "run_release",
    "run_requeue",
    "run_submit",
    "run_submit_batch",
]
