"""Payload limits and shapes of the graph kinds, checked at submit (no worker, no kernels)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from apps.core.services import worker_heartbeat_record
from apps.runs.models import Run

pytestmark = pytest.mark.django_db

PATH = [[0, 1], [1, 2], [2, 3]]


def graph(n=4, features=True, **extra):
    g = {"n": n, "edges": [[i, i + 1] for i in range(n - 1)]}
    if features:
        g["features"] = [[float(i), 1.0] for i in range(n)]
    return {**g, **extra}


def submit(api, session, kind, payload):
    return api.post(
        "/api/v1/runs", {"session": str(session.pk), "kind": kind, "payload": payload}, format="json"
    )


def error_fields(response):
    assert response.status_code == 400, response.content
    return response.json()["error"]


def test_valid_fgw_is_accepted_on_cpu(api, session):
    response = submit(api, session, "fgw", {"source": graph(), "target": graph(5), "alpha": 0.3})
    assert response.status_code == 201, response.content
    run = Run.objects.get()
    assert run.queue == "cpu" and run.payload["alpha"] == 0.3 and run.payload["method"] == "exact"


@override_settings(FGW_MAX_NODES=8)
def test_too_many_nodes_is_400_naming_the_limit(api, session):
    error = error_fields(submit(api, session, "fgw", {"source": graph(9), "target": graph()}))
    assert "limit is 8 nodes per graph" in error["message"]
    assert "source" in error["fields"]["payload"]


@override_settings(FGW_MAX_FEATURE_DIM=1)
def test_feature_dimension_over_the_limit_is_400(api, session):
    error = error_fields(submit(api, session, "fgw", {"source": graph(), "target": graph()}))
    assert "FGW_MAX_FEATURE_DIM" in error["message"]


@override_settings(FGW_MAX_PAIRS=2)
def test_too_many_pairs_is_400_naming_the_limit(api, session):
    pair = {"source": graph(), "target": graph()}
    error = error_fields(submit(api, session, "fgw_batch", {"pairs": [pair] * 3}))
    assert "limit is 2 pairs per batch" in error["message"]


@pytest.mark.parametrize(
    "source,fragment",
    [
        ({"structure": [[0, 1], [1]]}, "row 1 has 1 entries"),
        ({"structure": [[0, 1], [1, "x"]]}, "finite number"),
        ({"structure": [[0, 1e101], [1e101, 0]]}, "at most 1e+100 in magnitude"),
        ({"n": 2, "edges": [[0, 1]], "features": [[1e200], [0.0]]}, "at most 1e+100 in magnitude"),
        ({"n": 3, "edges": [[0, 3]]}, "not a node in 0..2"),
        ({"n": 3, "edges": [[0, 1, -2]]}, "positive"),
        ({"n": 0, "edges": []}, "positive integer"),
        ({"edges": [[0, 1]]}, "positive integer"),
        ({"nodes": 3}, "unknown key(s) nodes"),
        ({"features": [[1.0]]}, "needs `structure`"),
        ({"n": 2, "edges": [[0, 1]], "weights": [0.5, 0.6]}, "sum to 1"),
        ({"n": 2, "edges": [[0, 1]], "features": [[1.0]]}, "must have 2 rows"),
    ],
)
def test_malformed_graph_is_400(api, session, source, fragment):
    error = error_fields(submit(api, session, "fgw", {"source": source, "target": graph(features=False)}))
    assert fragment in str(error["fields"])


def test_features_on_one_side_only_is_400(api, session):
    error = error_fields(submit(api, session, "fgw", {"source": graph(), "target": graph(features=False)}))
    assert "both graphs" in str(error["fields"])


def test_bad_solver_options_are_400(api, session):
    for options, field in (
        ({"alpha": 2}, "alpha"),
        ({"method": "magic"}, "method"),
        ({"backend": "jax"}, "backend"),
    ):
        error = error_fields(submit(api, session, "fgw", {"source": graph(), "target": graph(), **options}))
        assert field in error["fields"]["payload"]


def test_gpu_is_refused_with_409_until_a_gpu_worker_offers_it(api, session):
    payload = {"source": graph(), "target": graph(), "device": "gpu"}
    refused = submit(api, session, "fgw", payload)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_capable_worker"
    assert "a GPU" in refused.json()["error"]["message"]
    # a GPU-queue worker without a usable device does not count
    worker_heartbeat_record(
        hostname="gpu0@h", queues=["gpu"], pid=1, capabilities={"backends": ["numpy"], "gpus": 0}
    )
    assert submit(api, session, "fgw", payload).status_code == 409
    worker_heartbeat_record(
        hostname="gpu1@h", queues=["gpu"], pid=2, capabilities={"backends": ["numpy", "cupy"], "gpus": 1}
    )
    assert submit(api, session, "fgw", payload).json()["queue"] == "gpu"
    assert (
        submit(api, session, "fgw", {**payload, "backend": "cupy", "device": "auto"}).json()["queue"] == "gpu"
    )
    assert submit(api, session, "fgw", {**payload, "device": "cpu"}).json()["queue"] == "cpu"
    assert Run.objects.count() == 3  # the refused ones stored nothing


def test_torch_and_cupy_are_checked_against_live_workers(api, session):
    pair = {"source": graph(), "target": graph()}
    for backend in ("torch", "cupy"):
        response = submit(api, session, "fgw", {**pair, "backend": backend})
        assert response.status_code == 409 and backend in response.json()["error"]["message"]
    worker_heartbeat_record(
        hostname="cpu0@h", queues=["cpu"], pid=1, capabilities={"backends": ["numpy", "torch"], "gpus": 0}
    )
    assert submit(api, session, "fgw", {**pair, "backend": "torch"}).status_code == 201
    assert submit(api, session, "fgw", {**pair, "backend": "cupy"}).status_code == 409
    # numpy and auto never wait on a capability check: a worker may come later
    assert submit(api, session, "fgw", {**pair, "backend": "numpy"}).status_code == 201
    assert "cannot be asked for with device cpu" in str(
        error_fields(submit(api, session, "fgw", {**pair, "backend": "cupy", "device": "cpu"}))
    )


def test_rd_sweep_validation(api, session):
    ok = submit(api, session, "rd_sweep", {"graph": graph(6), "levels": [6, 2, 4, 2]})
    assert ok.status_code == 201 and ok.json()["payload"]["levels"] == [2, 4, 6]
    # features are optional: a structure-only sweep is accepted
    assert (
        submit(api, session, "rd_sweep", {"graph": graph(features=False), "levels": [2]}).status_code == 201
    )
    assert "1..4" in str(error_fields(submit(api, session, "rd_sweep", {"graph": graph(), "levels": [5]})))
    with override_settings(RD_MAX_LEVELS=2):
        assert "RD_MAX_LEVELS" in str(
            error_fields(submit(api, session, "rd_sweep", {"graph": graph(), "levels": [1, 2, 3]}))
        )


@override_settings(FGW_MAX_PLAN_ENTRIES=30)
def test_plans_over_the_limit_are_400(api, session):
    assert (
        submit(api, session, "fgw", {"source": graph(5), "target": graph(6), "return_plan": True}).status_code
        == 201
    )
    error = error_fields(
        submit(api, session, "fgw", {"source": graph(5), "target": graph(7), "return_plan": True})
    )
    assert "FGW_MAX_PLAN_ENTRIES" in error["message"]
    pair = {"source": graph(4), "target": graph(4)}
    error = error_fields(submit(api, session, "fgw_batch", {"pairs": [pair, pair], "return_plan": True}))
    assert "32 entries" in error["message"]


@pytest.mark.parametrize(
    "kind,payload,field,fragment",
    [
        ("sleep", {"seconds": True}, "seconds", "Must be a number, not bool"),
        ("sleep", {"seconds": "5"}, "seconds", "Must be a number, not str"),
        ("sleep", {"seconds": 1, "tol": -1}, "tol", "Unknown field"),
        ("fgw", {"source": graph(), "target": graph(), "tol": -1}, "tol", "Unknown field"),
        ("fgw", {"source": graph(), "target": graph(), "alpha": "0.5"}, "alpha", "not str"),
        ("fgw", {"source": graph(), "target": graph(), "max_iter": 10.5}, "max_iter", "Must be an integer"),
        ("fgw", {"source": graph(), "target": graph(), "return_plan": "yes"}, "return_plan", "true or false"),
        ("fgw", {"source": graph(), "target": graph(), "method": 1}, "method", "Must be a string"),
        ("rd_sweep", {"graph": graph(), "levels": [True]}, "levels", "Must be an integer"),
    ],
)
def test_payload_types_are_strict_and_unknown_keys_refused(api, session, kind, payload, field, fragment):
    error = error_fields(submit(api, session, kind, payload))
    assert fragment in str(error["fields"]["payload"][field])
    assert Run.objects.count() == 0


@pytest.mark.parametrize(
    "structure,fragment",
    [
        ([[0, 1], [2, 0]], "must be symmetric: structure[0][1] = 1"),
        ([[0, -1], [-1, 0]], "must be non-negative"),
    ],
)
def test_structures_must_be_symmetric_and_non_negative(api, session, structure, fragment):
    error = error_fields(
        submit(api, session, "fgw", {"source": {"structure": structure}, "target": graph(2)})
    )
    assert fragment in str(error["fields"])


def test_structure_and_edges_together_are_refused(api, session):
    both = {"structure": [[0, 1], [1, 0]], "n": 2, "edges": [[0, 1]]}
    error = error_fields(submit(api, session, "fgw", {"source": both, "target": graph(2, features=False)}))
    assert "not both" in str(error["fields"])


def test_a_lone_surrogate_is_named_as_such(api, session):
    body = f'{{"session": "{session.pk}", "kind": "echo", "payload": {{"text": "\\ud800"}}}}'
    response = api.post("/api/v1/runs", body, content_type="application/json")
    assert response.status_code == 400
    message = str(response.json()["error"])
    assert "lone surrogate" in message and "NaN" not in message


HUGE = "1" + "0" * 400  # JSON allows it; a float cannot hold it (math.isfinite raised OverflowError: a 500)


@pytest.mark.parametrize(
    "kind,payload",
    [
        ("sleep", '{"seconds": %s}'),
        ("sleep", '{"seconds": -%s}'),
        ("python", '{"code": "", "timeout_s": %s}'),
        (
            "fgw",
            '{"source": {"n": 2, "edges": [[0, 1]]}, "target": {"n": 2, "edges": [[0, 1]]}, "alpha": %s}',
        ),
        ("fgw", '{"source": {"structure": [[0, %s], [%s, 0]]}, "target": {"n": 2, "edges": [[0, 1]]}}'),
        ("fgw", '{"source": {"n": 2, "edges": [[0, 1, %s]]}, "target": {"n": 2, "edges": [[0, 1]]}}'),
    ],
)
def test_an_integer_beyond_a_floats_range_is_400_not_500(api, session, kind, payload):
    payload = payload.replace("%s", HUGE)
    body = f'{{"session": "{session.pk}", "kind": "{kind}", "payload": {payload}}}'
    for path, text in (("/api/v1/runs", body), ("/api/v1/runs/batch", f'{{"runs": [{body}]}}')):
        error = error_fields(api.post(path, text, content_type="application/json"))
        assert "finite number" in str(error["fields"]), error
    assert Run.objects.count() == 0
