"""fgw and rd_sweep runs through the API, the broker and a real worker."""

from __future__ import annotations

import numpy as np
import ot
import pytest

from tests.workers.conftest import wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module", autouse=True)
def compiled_kernels():
    """Compile the numba kernels into their disk cache before any worker starts, so a
    run's time limit is not spent compiling on a fresh checkout (workers then load it)."""
    from kernels import warmup

    warmup.main()


RNG = np.random.default_rng(11)


def ring(n: int, d: int = 2) -> dict:
    return {
        "n": n,
        "edges": [[i, (i + 1) % n] for i in range(n)],
        "structure_kind": "adjacency",
        "features": RNG.normal(size=(n, d)).round(6).tolist(),
    }


def submit(api, session, kind, payload):
    response = api.post(
        "/api/v1/runs", {"session": str(session.pk), "kind": kind, "payload": payload}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_fgw_run_gives_pots_distance(start_worker, api, session):
    start_worker("fgw")
    source, target = ring(6), ring(8)
    run = wait_for_run(
        submit(api, session, "fgw", {"source": source, "target": target}), {"succeeded", "failed"}
    )

    assert run.status == "succeeded", run.error
    adjacency = lambda g: np.array(  # noqa: E731
        [[1.0 if (j - i) % g["n"] in (1, g["n"] - 1) else 0.0 for j in range(g["n"])] for i in range(g["n"])]
    )
    expected = ot.gromov.fused_gromov_wasserstein2(
        ot.dist(np.array(source["features"]), np.array(target["features"])),
        adjacency(source),
        adjacency(target),
        loss_fun="square_loss",
        alpha=0.5,
    )
    assert run.result["distance"] == pytest.approx(float(expected), rel=1e-7)
    assert run.result["backend"] == "numpy" and run.result["converged"] is True


def test_rd_sweep_run_then_knee_endpoint(start_worker, api, session):
    start_worker("rd")
    graph = ring(16, d=3)
    run = wait_for_run(
        submit(api, session, "rd_sweep", {"graph": graph, "levels": [1, 2, 4, 6, 8, 12, 16]}),
        {"succeeded", "failed"},
        timeout=60,
    )
    assert run.status == "succeeded", run.error

    curve = api.get("/api/v1/rd/curve", {"run": str(run.pk)}).json()
    assert [p["level"] for p in curve["points"]] == [1, 2, 4, 6, 8, 12, 16] and curve["nodes"] == 16
    knee = api.get("/api/v1/rd/knee", {"run": str(run.pk)})
    assert knee.status_code == 200
    assert knee.json()["knee"]["level"] == run.result["knee"]["level"] == curve["knee"]["level"]
