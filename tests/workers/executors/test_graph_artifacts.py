"""Graphs given as uploaded artifacts, and plans too large for a result stored as artifacts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from apps.artifacts.models import Artifact
from apps.artifacts.services import artifact_open
from apps.runs.models import Run, RunStatus
from apps.sessions.services import session_create
from workers.execution import run_execute

RUNS = "/api/v1/runs"


@pytest.fixture(autouse=True)
def artifact_root(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path},
        },
    }


def ring(n: int) -> dict:
    rng = np.random.default_rng(n)
    return {
        "n": n,
        "edges": [[i, (i + 1) % n] for i in range(n)],
        "features": rng.normal(size=(n, 2)).tolist(),
    }


def upload(api, session, graph: dict, content_type: str = "application/json") -> str:
    body = json.dumps(graph).encode()
    response = api.generic(
        "POST", f"/api/v1/artifacts?session={session.pk}&name=graph.json", body, content_type=content_type
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def submit(api, session, kind: str, payload: dict):
    return api.post(RUNS, {"session": str(session.pk), "kind": kind, "payload": payload}, format="json")


def execute(run_id: str) -> Run:
    from apps.runs.services import run_claim

    Run.objects.filter(pk=run_id).update(status=RunStatus.QUEUED)
    run_execute(run=run_claim(run_id=run_id, hostname="w"))
    return Run.objects.get(pk=run_id)


@pytest.mark.django_db(transaction=True)
def test_a_graph_artifact_gives_the_same_distance_as_the_inline_graph(api, session):
    source, target = ring(9), ring(7)
    artifact_id = upload(api, session, source)
    by_artifact = submit(
        api, session, "fgw", {"source": {"artifact": artifact_id}, "target": target, "device": "cpu"}
    )
    inline = submit(api, session, "fgw", {"source": source, "target": target, "device": "cpu"})
    assert by_artifact.status_code == 201, by_artifact.content
    stored = by_artifact.json()["payload"]["source"]
    assert stored["artifact"] == artifact_id and stored["sha256"] == Artifact.objects.get().sha256

    first, second = execute(by_artifact.json()["id"]), execute(inline.json()["id"])
    assert first.status == second.status == RunStatus.SUCCEEDED, first.error
    assert first.result["distance"] == pytest.approx(second.result["distance"], rel=1e-12)


@pytest.mark.django_db(transaction=True)
def test_a_graph_artifact_is_checked_like_an_inline_graph_when_loaded(api, session):
    bad = {"structure": [[0, 1], [2, 0]]}
    run_id = submit(
        api,
        session,
        "fgw",
        {"source": {"artifact": upload(api, session, bad)}, "target": ring(2), "device": "cpu"},
    ).json()["id"]
    run = execute(run_id)
    assert run.status == RunStatus.FAILED and run.error["type"] == "GraphArtifactInvalid"
    assert "must be symmetric" in run.error["message"]

    sweep = submit(
        api, session, "rd_sweep", {"graph": {"artifact": upload(api, session, ring(4))}, "levels": [2, 9]}
    ).json()["id"]
    assert "levels must lie in 1..4" in execute(sweep).error["message"]


@pytest.mark.django_db
def test_only_json_artifacts_of_the_runs_session_are_accepted(api, other_api, session, user, other_user):
    theirs = session_create(owner=other_user, name="theirs")
    elsewhere = session_create(owner=user, name="elsewhere")
    cases = [
        (upload(other_api, theirs, ring(3)), "not found in this run's session"),
        (upload(api, elsewhere, ring(3)), "not found in this run's session"),
        (upload(api, session, ring(3), content_type="text/csv"), "must be JSON"),
        ("not-a-uuid", "artifact id"),
    ]
    for artifact_id, fragment in cases:
        response = submit(api, session, "fgw", {"source": {"artifact": artifact_id}, "target": ring(3)})
        assert response.status_code == 400 and fragment in str(response.json()["error"]["fields"])
    extra = submit(api, session, "fgw", {"source": {"artifact": cases[0][0], "n": 3}, "target": ring(3)})
    assert extra.status_code == 400 and "alone" in str(extra.json())


@pytest.mark.django_db(transaction=True)
def test_a_large_plan_is_stored_as_an_artifact_of_the_run(api, session, settings):
    settings.FGW_INLINE_PLAN_ENTRIES = 20
    payload = {"source": ring(5), "target": ring(6), "return_plan": True, "device": "cpu"}
    run = execute(submit(api, session, "fgw", payload).json()["id"])
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "plan" not in run.result
    reference = run.result["plan_artifact"]
    artifact = Artifact.objects.get(pk=reference["artifact"])
    assert artifact.run_id == run.pk and artifact.sha256 == reference["sha256"]
    with artifact_open(artifact=artifact) as stream:
        plan = np.array(json.load(stream))
    assert plan.shape == (5, 6) and plan.sum() == pytest.approx(1.0)
    small = execute(
        submit(api, session, "fgw", {**payload, "source": ring(3), "target": ring(3)}).json()["id"]
    )
    assert np.array(small.result["plan"]).shape == (3, 3)  # under the limit: inline
