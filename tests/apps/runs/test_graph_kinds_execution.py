"""The graph kinds' executors on plain numpy, against POT on the same inputs."""

from __future__ import annotations

import numpy as np
import ot
import pytest

from apps.runs.kinds import get_kind
from apps.runs.models import Run
from apps.runs.services import RunCancelled

RNG = np.random.default_rng(7)


class FakeContext:
    def __init__(self, session_id: str = "", run_id: str = "", cancel_after: int | None = None) -> None:
        self.run_id = run_id
        self.session_id = session_id
        self.reports: list[float] = []
        self.cancel_after = cancel_after

    def check(self) -> None:
        if self.cancel_after is not None and len(self.reports) >= self.cancel_after:
            raise RunCancelled("cancelled")

    def progress(self, fraction: float) -> None:
        self.check()
        self.reports.append(fraction)


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

    result = get_kind("fgw").execute(payload, ctx)

    assert result["distance"] == pytest.approx(pot_fgw(source, target, 0.4), rel=1e-7)
    assert result["backend"] == "numpy" and result["device"] == "cpu"
    assert result["converged"] and result["n_iter"] >= 1 and "plan" not in result
    assert ctx.reports == [1.0]


def test_fgw_plan_on_request_has_the_marginals():
    source, target = random_graph(5), random_graph(6)
    payload = validated("fgw", {"source": source, "target": target, "return_plan": True, "device": "cpu"})
    plan = np.array(get_kind("fgw").execute(payload, FakeContext())["plan"])
    assert plan.shape == (5, 6)
    np.testing.assert_allclose(plan.sum(1), np.full(5, 1 / 5), atol=1e-9)
    np.testing.assert_allclose(plan.sum(0), np.full(6, 1 / 6), atol=1e-9)


def test_edge_list_graphs_use_normalised_shortest_paths():
    path = {"n": 4, "edges": [[0, 1], [1, 2], [2, 3]]}
    payload = validated("fgw", {"source": path, "target": path, "device": "cpu"})
    assert get_kind("fgw").execute(payload, FakeContext())["distance"] == pytest.approx(0.0, abs=1e-12)


def test_fgw_batch_equals_pairs_one_by_one_and_reports_progress(monkeypatch):
    monkeypatch.setattr("apps.runs.kinds.fgw_batch.PAIRS_PER_CALL", 2)
    pairs = [{"source": random_graph(n), "target": random_graph(n + 1)} for n in (3, 4, 5, 6, 7)]
    payload = validated("fgw_batch", {"pairs": pairs, "alpha": 0.6, "device": "cpu"})
    ctx = FakeContext()

    result = get_kind("fgw_batch").execute(payload, ctx)

    expected = [pot_fgw(p["source"], p["target"], 0.6) for p in pairs]
    assert [r["distance"] for r in result["results"]] == pytest.approx(expected, rel=1e-7)
    assert ctx.reports == pytest.approx([0.4, 0.8, 1.0])


def test_fgw_batch_stops_when_cancelled(monkeypatch):
    monkeypatch.setattr("apps.runs.kinds.fgw_batch.PAIRS_PER_CALL", 1)
    pairs = [{"source": random_graph(4), "target": random_graph(4)}] * 4
    payload = validated("fgw_batch", {"pairs": pairs, "device": "cpu"})
    ctx = FakeContext(cancel_after=2)
    with pytest.raises(RunCancelled):
        get_kind("fgw_batch").execute(payload, ctx)
    assert len(ctx.reports) == 2


@pytest.mark.django_db
def test_rd_sweep_stores_points_and_the_knee(session):
    from apps.rd.models import RDKnee, RDPoint

    n = 24
    graph = random_graph(n, d=3)
    payload = validated("rd_sweep", {"graph": graph, "levels": [2, 4, 6, 8, 12, 16, 24], "device": "cpu"})
    run = Run.objects.create(owner=session.owner, session=session, kind="rd_sweep", queue="cpu")
    ctx = FakeContext(session_id=str(session.pk), run_id=str(run.pk))

    result = get_kind("rd_sweep").execute(payload, ctx)

    levels = [p["level"] for p in result["points"]]
    assert levels == [2, 4, 6, 8, 12, 16, 24]
    assert list(RDPoint.objects.filter(session=session).values_list("level", flat=True)) == levels
    by_level = {p["level"]: p for p in result["points"]}
    assert by_level[24]["distortion"] == pytest.approx(0.0, abs=1e-9)  # no coarsening, no distortion
    assert by_level[2]["distortion"] > by_level[12]["distortion"]
    assert ctx.reports[-1] == 1.0
    knee = RDKnee.objects.get(session=session)
    assert knee.points == 7 and knee.level in levels
    assert result["knee"]["level"] == knee.level
    assert RDPoint.objects.filter(session=session, run=run).count() == 7
