"""The graph kinds' executors on plain numpy, against POT on the same inputs; rd_sweep's
curve recorded by its on_success inside the run's completion, fenced by its attempt."""

from __future__ import annotations

import numpy as np
import ot
import pytest

from apps.runs.kinds import get_kind
from apps.runs.models import Run, RunStatus
from apps.runs.services import RunCancelled, run_claim, run_submit
from workers.execution import run_execute
from workers.executors import get_executor

RNG = np.random.default_rng(7)


class FakeContext:
    def __init__(self, session_id: str = "", run_id: str = "", cancel_after: int | None = None) -> None:
        self.run_id = run_id
        self.session_id = session_id
        self.reports: list[float] = []
        self.cancel_after = cancel_after
        self.artifacts = None  # no plan in these tests is large enough to be stored

    def check(self) -> None:
        if self.cancel_after is not None and len(self.reports) >= self.cancel_after:
            raise RunCancelled("cancelled")

    def progress(self, fraction: float) -> None:
        self.check()
        self.reports.append(fraction)

    def backend(self, payload: dict) -> str:
        return "numpy"


def random_graph(n: int, d: int = 2) -> dict:
    upper = np.triu(RNG.random((n, n)) < 0.4, 1)
    structure = (upper | upper.T).astype(float)
    return {"structure": structure.tolist(), "features": RNG.normal(size=(n, d)).tolist(), "n": n}


def validated(kind: str, payload: dict) -> dict:
    return get_kind(kind).validate_payload(payload)


def pot_fgw(source: dict, target: dict, alpha: float) -> float:
    x, y = np.array(source["features"]), np.array(target["features"])
    M = ot.dist(x, y)  # squared euclidean
    return float(
        ot.gromov.fused_gromov_wasserstein2(
            M,
            np.array(source["structure"]),
            np.array(target["structure"]),
            loss_fun="square_loss",
            alpha=alpha,
        )
    )


def test_fgw_matches_pot_and_reports_its_backend():
    source, target = random_graph(7), random_graph(9)
    payload = validated("fgw", {"source": source, "target": target, "alpha": 0.4, "device": "cpu"})
    ctx = FakeContext()

    result = get_executor("fgw")(payload, ctx)

    assert result["distance"] == pytest.approx(pot_fgw(source, target, 0.4), rel=1e-7)
    assert result["backend"] == "numpy" and result["device"] == "cpu"
    assert result["converged"] and result["n_iter"] >= 1 and "plan" not in result
    assert ctx.reports == [1.0]


def test_fgw_plan_on_request_has_the_marginals():
    source, target = random_graph(5), random_graph(6)
    payload = validated("fgw", {"source": source, "target": target, "return_plan": True, "device": "cpu"})
    plan = np.array(get_executor("fgw")(payload, FakeContext())["plan"])
    assert plan.shape == (5, 6)
    np.testing.assert_allclose(plan.sum(1), np.full(5, 1 / 5), atol=1e-9)
    np.testing.assert_allclose(plan.sum(0), np.full(6, 1 / 6), atol=1e-9)


def test_edge_list_graphs_use_normalised_shortest_paths():
    path = {"n": 4, "edges": [[0, 1], [1, 2], [2, 3]]}
    payload = validated("fgw", {"source": path, "target": path, "device": "cpu"})
    assert get_executor("fgw")(payload, FakeContext())["distance"] == pytest.approx(0.0, abs=1e-12)


def test_fgw_batch_equals_pairs_one_by_one_and_reports_progress(monkeypatch):
    monkeypatch.setattr("workers.executors.fgw_batch.PAIRS_PER_CALL", 2)
    pairs = [{"source": random_graph(n), "target": random_graph(n + 1)} for n in (3, 4, 5, 6, 7)]
    payload = validated("fgw_batch", {"pairs": pairs, "alpha": 0.6, "device": "cpu"})
    ctx = FakeContext()

    result = get_executor("fgw_batch")(payload, ctx)

    expected = [pot_fgw(p["source"], p["target"], 0.6) for p in pairs]
    assert [r["distance"] for r in result["results"]] == pytest.approx(expected, rel=1e-7)
    assert ctx.reports == pytest.approx([0.4, 0.8, 1.0])


def test_fgw_batch_stops_when_cancelled(monkeypatch):
    monkeypatch.setattr("workers.executors.fgw_batch.PAIRS_PER_CALL", 1)
    pairs = [{"source": random_graph(4), "target": random_graph(4)}] * 4
    payload = validated("fgw_batch", {"pairs": pairs, "device": "cpu"})
    ctx = FakeContext(cancel_after=2)
    with pytest.raises(RunCancelled):
        get_executor("fgw_batch")(payload, ctx)
    assert len(ctx.reports) == 2


def claimed(session, kind: str, payload: dict) -> Run:
    run, _ = run_submit(user=session.owner, session_id=session.pk, kind=kind, payload=payload)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
    return run_claim(run_id=run.pk, hostname="w")


# transaction=True: the run's heartbeat thread has its own connection and must see the run.
@pytest.mark.django_db(transaction=True)
def test_rd_sweep_records_its_own_curve_and_knee(session):
    from apps.rd.models import RDCurve

    n = 24
    graph = random_graph(n, d=3)
    run = claimed(session, "rd_sweep", {"graph": graph, "levels": [2, 4, 6, 8, 12, 16, 24], "device": "cpu"})

    assert run_execute(run=run) == "succeeded"

    run.refresh_from_db()
    levels = [p["level"] for p in run.result["points"]]
    assert levels == [2, 4, 6, 8, 12, 16, 24]
    curve = RDCurve.objects.get(run=run)
    assert curve.nodes == n and curve.session_id == session.pk
    assert list(curve.points.order_by("level").values_list("level", flat=True)) == levels
    by_level = {p["level"]: p for p in run.result["points"]}
    assert by_level[24]["distortion"] == pytest.approx(0.0, abs=1e-9)  # no coarsening, no distortion
    assert by_level[2]["distortion"] > by_level[12]["distortion"]
    assert curve.knee_level == run.result["knee"]["level"] and curve.knee_level in levels


def test_rd_sweep_passes_epsilon_and_max_iter_to_the_kernel(monkeypatch):
    import kernels.rd

    real, seen = kernels.rd.rd_curve, []

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(kernels.rd, "rd_curve", spy)
    graph = random_graph(10, d=2)
    base = {"graph": graph, "levels": [2, 5], "device": "cpu", "method": "entropic"}
    coarse = get_executor("rd_sweep")(validated("rd_sweep", {**base, "epsilon": 0.5}), FakeContext())
    fine = get_executor("rd_sweep")(
        validated("rd_sweep", {**base, "epsilon": 0.01, "max_iter": 7}), FakeContext()
    )

    assert [(k["epsilon"], k.get("max_iter")) for k in seen] == [(0.5, None), (0.01, 7)]
    # and the kernel used them: another epsilon, other distortions
    assert [p["distortion"] for p in coarse["points"]] != pytest.approx(
        [p["distortion"] for p in fine["points"]], rel=1e-3
    )


@pytest.mark.django_db(transaction=True)
def test_rd_sweep_without_features_is_accepted_and_runs(session):
    graph = random_graph(8)
    del graph["features"]
    run = claimed(session, "rd_sweep", {"graph": graph, "levels": [2, 4, 8], "device": "cpu"})
    assert run_execute(run=run) == "succeeded"


@pytest.mark.django_db
def test_a_sweep_that_lost_its_lease_records_no_curve(session):
    from apps.rd.models import RDCurve
    from apps.runs.services import run_complete

    run = claimed(session, "rd_sweep", {"graph": random_graph(6), "levels": [2, 3, 6], "device": "cpu"})
    result = get_executor("rd_sweep")(run.payload, FakeContext())
    Run.objects.filter(pk=run.pk).update(attempts=run.attempts + 1)  # another worker took it over

    assert run_complete(run=run, attempt=run.attempts, result=result) is False
    assert not RDCurve.objects.filter(run=run).exists()
