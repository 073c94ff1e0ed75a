"""POST /api/v1/runs/compare: differences, summary statistics and the best run, owner-scoped."""

from __future__ import annotations

import uuid

import pytest

from apps.runs.models import Run
from tests.apps.reports.finished_runs import finished, rd_sweep, submitted

pytestmark = pytest.mark.django_db


def compare(api, runs, **options):
    return api.post("/api/v1/runs/compare", {"runs": [str(run.pk) for run in runs], **options}, format="json")


def test_differences_summary_and_best_by_a_result_metric(api, user, session):
    # given three runs whose payloads and results differ in places
    runs = [
        finished(
            user, session, "echo", {"alpha": 0.5, "name": "a", "same": 1}, {"distance": 0.3, "plan": [1, 2]}
        ),
        finished(
            user, session, "echo", {"alpha": 0.7, "name": "b", "same": 1}, {"distance": 0.1, "plan": [1, 2]}
        ),
        finished(user, session, "echo", {"alpha": 0.5, "same": 1}, {"distance": 0.2, "plan": [1, 2]}),
    ]

    # when
    response = compare(api, runs, metric="distance")

    # then
    assert response.status_code == 200, response.json()
    body = response.json()
    ids = [str(run.pk) for run in runs]
    assert body["metric"] == "distance" and body["goal"] == "min"
    assert body["best"] == {"run": ids[1], "value": 0.1}
    payload = {item["path"]: item for item in body["payload"]["differences"]}
    assert set(payload) == {"alpha", "name"} and body["payload"]["same"] == 1
    assert payload["alpha"]["values"] == {ids[0]: 0.5, ids[1]: 0.7, ids[2]: 0.5}
    assert payload["name"]["missing"] == [ids[2]]
    assert [item["path"] for item in body["result"]["differences"]] == ["distance"]
    summary = body["summary"]["distance"]
    assert (summary["count"], summary["min"], summary["max"]) == (3, 0.1, 0.3)
    assert summary["mean"] == pytest.approx(0.2) and summary["median"] == 0.2
    assert body["summary"]["duration_seconds"]["count"] == 3

    highest = compare(api, runs, metric="distance", goal="max").json()
    assert highest["best"] == {"run": ids[0], "value": 0.3}


def test_the_kind_chooses_the_default_metric(api, user, session):
    first, second = rd_sweep(user, session), rd_sweep(user, session)
    Run.objects.filter(pk=second.pk).update(
        result={**second.result, "knee": {"level": 2, "rate": 0.4, "distortion": 0.01}}
    )

    body = compare(api, [first, second]).json()

    assert body["metric"] == "distortion" and body["best"] == {"run": str(second.pk), "value": 0.01}
    mixed = compare(api, [first, finished(user, session, "echo", {}, {})]).json()
    assert mixed["metric"] == "duration_seconds" and mixed["best"] is not None


def test_only_succeeded_runs_compete_and_withheld_results_stay_hidden(api, user, session):
    done = finished(user, session, "echo", {"k": 1}, {"secret": "kept back", "distance": 1.0})
    stopped = submitted(user, session, "sleep", {"seconds": 1})
    Run.objects.filter(pk=done.pk).update(result_withheld=True)
    Run.objects.filter(pk=stopped.pk).update(status="cancelled", duration_seconds=0.001)

    by_distance = compare(api, [done, stopped], metric="distance").json()
    by_duration = compare(api, [done, stopped]).json()

    assert by_distance["best"] is None and by_distance["without_metric"] == [str(done.pk), str(stopped.pk)]
    assert "kept back" not in str(by_distance)
    assert by_duration["metric"] == "duration_seconds" and by_duration["best"]["run"] == str(done.pk)
    assert by_duration["summary"]["duration_seconds"]["count"] == 1


def test_foreign_or_unknown_runs_are_404_and_input_is_checked(api, other_api, user, session):
    mine = [finished(user, session, "echo", {"i": i}, {}) for i in range(2)]
    unknown = str(uuid.uuid4())

    foreign = compare(other_api, mine)
    assert foreign.status_code == 404 and set(foreign.json()["error"]["fields"]["runs"]) == {
        str(r.pk) for r in mine
    }
    missing = api.post("/api/v1/runs/compare", {"runs": [str(mine[0].pk), unknown]}, format="json")
    assert missing.status_code == 404 and missing.json()["error"]["fields"]["runs"] == [unknown]

    for bad in (
        {"runs": [str(mine[0].pk)]},
        {"runs": [str(mine[0].pk)] * 2},
        {"runs": [str(uuid.uuid4()) for _ in range(51)]},
        {"runs": ["nope", str(mine[0].pk)]},
        {"runs": [str(r.pk) for r in mine], "goal": "best"},
        {"runs": [str(r.pk) for r in mine], "metric": "a b"},
        {},
    ):
        response = api.post("/api/v1/runs/compare", bad, format="json")
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid", bad
