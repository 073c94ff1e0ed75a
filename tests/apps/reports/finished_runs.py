"""Runs taken through the platform's own services, as a worker would take them: submitted
(validation and governance), claimed, completed. For export, compare and CLI tests."""

from __future__ import annotations

from typing import Any

from apps.runs.models import Run
from apps.runs.services import run_claim, run_complete, run_submit

SMALL_GRAPH = {"n": 4, "edges": [[0, 1], [1, 2], [2, 3]]}
RD_RESULT = {
    "nodes": 4,
    "points": [
        {"level": 1, "rate": 0.0, "distortion": 0.5},
        {"level": 2, "rate": 0.41, "distortion": 0.125},
        {"level": 4, "rate": 1.0, "distortion": 0.0},
    ],
    "knee": {"level": 2, "rate": 0.41, "distortion": 0.125},
}


def submitted(user: Any, session: Any, kind: str, payload: dict[str, Any]) -> Run:
    run, _ = run_submit(user=user, session_id=session.pk, kind=kind, payload=payload)
    return run


def finished(user: Any, session: Any, kind: str, payload: dict[str, Any], result: Any) -> Run:
    run = submitted(user, session, kind, payload)
    claimed = run_claim(run_id=run.pk, hostname="test-worker")
    assert run_complete(run=claimed, attempt=claimed.attempts, result=result)
    return Run.objects.select_related("trace").get(pk=run.pk)


def rd_sweep(user: Any, session: Any) -> Run:
    return finished(user, session, "rd_sweep", {"graph": SMALL_GRAPH, "levels": [1, 2, 4]}, RD_RESULT)
