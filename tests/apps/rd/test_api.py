"""RD curves per sweep: each rd_sweep run is its own curve with its own knee."""

from __future__ import annotations

import pytest

from apps.rd.services import rd_sweep_record
from apps.runs.models import Run

pytestmark = pytest.mark.django_db


def sweep(session, nodes: int, points: list[tuple[int, float, float]], knee_level: int | None) -> Run:
    run = Run.objects.create(owner=session.owner, session=session, kind="rd_sweep", queue="cpu")
    rows = [{"level": level, "rate": rate, "distortion": distortion} for level, rate, distortion in points]
    knee = next((row for row in rows if row["level"] == knee_level), None)
    rd_sweep_record(run=run, nodes=nodes, points=rows, knee=knee)
    return run


def test_curves_of_two_graphs_are_not_mixed(api, session):
    big = sweep(session, 12, [(2, 0.1, 0.9), (4, 0.9, 0.3), (8, 1.2, 0.2), (12, 1.5, 0.0)], knee_level=4)
    small = sweep(session, 3, [(1, 0.0, 0.5), (2, 0.4, 0.2), (3, 0.9, 0.0)], knee_level=2)

    curve = api.get("/api/v1/rd/curve", {"run": str(small.pk)}).json()
    assert curve["nodes"] == 3 and [p["level"] for p in curve["points"]] == [1, 2, 3]
    assert curve["knee"]["level"] == 2

    session_curves = api.get("/api/v1/rd/curve", {"session": str(session.pk)}).json()["curves"]
    assert {c["run"]: [p["level"] for p in c["points"]] for c in session_curves} == {
        str(big.pk): [2, 4, 8, 12],
        str(small.pk): [1, 2, 3],
    }

    knees = api.get("/api/v1/rd/knee", {"session": str(session.pk)}).json()
    assert {k["run"]: k["knee"]["level"] for k in knees} == {str(big.pk): 4, str(small.pk): 2}
    knee = api.get("/api/v1/rd/knee", {"run": str(big.pk)}).json()
    assert (knee["nodes"], knee["knee"]["level"], knee["knee"]["rate"]) == (12, 4, 0.9)


def test_a_sweep_without_a_knee_is_404_with_a_reason(api, session):
    run = sweep(session, 2, [(1, 0.0, 0.4), (2, 0.5, 0.0)], knee_level=None)
    response = api.get("/api/v1/rd/knee", {"run": str(run.pk)})
    assert response.status_code == 404 and "at least 3 points" in response.json()["error"]["message"]
    assert api.get("/api/v1/rd/knee", {"session": str(session.pk)}).json() == []


def test_query_needs_exactly_one_of_run_or_session_and_is_scoped(api, other_api, session):
    run = sweep(session, 3, [(1, 0.0, 0.5), (2, 0.4, 0.2), (3, 0.9, 0.0)], knee_level=2)
    assert api.get("/api/v1/rd/curve").status_code == 400
    assert api.get("/api/v1/rd/curve", {"run": str(run.pk), "session": str(session.pk)}).status_code == 400
    assert api.get("/api/v1/rd/knee", {"session": "nope"}).status_code == 400
    assert other_api.get("/api/v1/rd/curve", {"session": str(session.pk)}).status_code == 404
    assert other_api.get("/api/v1/rd/curve", {"run": str(run.pk)}).status_code == 404
    assert other_api.get("/api/v1/rd/knee", {"run": str(run.pk)}).status_code == 404
