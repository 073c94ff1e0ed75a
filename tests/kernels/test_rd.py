"""kernels.rd: rate, RD curves, the knee and the tracker."""

from __future__ import annotations

import math

import numpy as np
import ot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kneed import KneeLocator

from kernels import rd
from kernels.graphs import coarsen, shortest_path
from kernels.rd import RDPoint, RDTracker, fused_variance, knee_index, knee_point, rate, rd_curve

# --------------------------------------------------------------------------- rate


def test_rate_formula_and_edge_cases():
    assert rate(0.25, 1.0) == pytest.approx(1.0)  # ½·log2(4)
    assert rate(1.0, 16.0) == pytest.approx(2.0)
    assert rate(1.0, 1.0) == 0.0  # D = σ²
    assert rate(2.0, 1.0) == 0.0  # D > σ²
    assert rate(0.0, 1.0) == 0.0  # lossless: 0 by convention
    assert rate(-1e-3, 1.0) == 0.0
    assert rate(0.5, 0.0) == 0.0  # no variance, nothing to send
    assert math.isnan(rate(float("nan"), 1.0))
    assert isinstance(rate(0.5, 1.0), float)
    np.testing.assert_allclose(rate([0.25, 1.0, 0.0, 1 / 64], 1.0), [1.0, 0.0, 0.0, 3.0])


# --------------------------------------------------------------------------- RD curve


def graph(seed: int, n: int, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < 0.3, 1)
    C = shortest_path(upper | upper.T)
    return rng.normal(size=(n, d)), C


def test_fused_variance_is_the_one_node_distortion():
    X, C = graph(0, 12)
    p = np.random.default_rng(0).uniform(0.1, 1.0, 12)
    p /= p.sum()
    c = coarsen(X, C, p, 1)
    expected = ot.gromov.fused_gromov_wasserstein2(
        ot.dist(X, c.features), C, c.structure, p, c.weights, alpha=0.3
    )
    assert fused_variance(X, C, p, alpha=0.3) == pytest.approx(expected, rel=1e-12)
    feature_var = p @ ((X - p @ X) ** 2).sum(1)
    assert fused_variance(X, C, p, alpha=0.0) == pytest.approx(feature_var, rel=1e-12)


def test_rd_curve_shape_and_pot_values():
    X, C = graph(1, 20)
    levels = [20, 1, 3, 6, 10, 6]

    points = rd_curve(X, C, levels, alpha=0.4, backend="numpy")

    assert [p.level for p in points] == [1, 3, 6, 10, 20]
    by_level = {p.level: p for p in points}
    variance = fused_variance(X, C, alpha=0.4)
    assert by_level[1].distortion == pytest.approx(variance, rel=1e-12) and by_level[1].rate == 0.0
    assert by_level[20].distortion == 0.0  # k == n: lossless
    assert by_level[3].distortion > by_level[10].distortion > 0
    for p in points:
        assert p.rate == rate(p.distortion, variance)
    p_unif = np.full(20, 1 / 20)
    for k in (3, 6, 10):
        c = coarsen(X, C, None, k, alpha=0.4)
        pot = ot.gromov.fused_gromov_wasserstein2(
            ot.dist(X, c.features), C, c.structure, p_unif, c.weights, alpha=0.4
        )
        assert by_level[k].distortion == pytest.approx(pot, rel=1e-7)


@pytest.mark.parametrize(
    ("levels", "alpha", "message"),
    [
        ([2, 2.5], 0.5, "levels must be integers in \\[1, 12\\]"),
        ([0, 3], 0.5, "levels must be integers"),
        ([3, 13], 0.5, "levels must be integers"),
        ([3, 6], 1.5, "alpha must lie in \\[0, 1\\]"),
    ],
)
def test_rd_curve_names_what_is_wrong(levels, alpha, message):
    X, C = graph(4, 12)
    with pytest.raises(ValueError, match=message):
        rd_curve(X, C, levels, alpha=alpha, backend="numpy")


def test_rd_curve_distortion_falls_with_the_level():
    X, C = graph(2, 32)
    points = rd_curve(X, C, [1, 2, 4, 8, 16, 32], backend="numpy")
    distortions = [p.distortion for p in points]
    rates = [p.rate for p in points[:-1]]
    assert distortions[0] > distortions[2] > distortions[4] > distortions[5] == 0.0
    assert rates[0] == 0.0 and rates[-1] > rates[1]


def test_rd_curve_weights_and_entropic():
    X, C = graph(3, 10)
    w = np.random.default_rng(3).uniform(1, 2, 10)  # need not sum to 1
    exact = rd_curve(X, C, [2, 5], weights=w, backend="numpy")
    scaled = rd_curve(X, C, [2, 5], weights=3 * w, backend="numpy")
    assert [p.distortion for p in exact] == pytest.approx([p.distortion for p in scaled], rel=1e-9)
    entropic = rd_curve(X, C, [2, 5], weights=w, method="entropic", epsilon=1e-2, backend="numpy")
    assert all(math.isfinite(p.distortion) and p.distortion >= 0 for p in entropic)
    assert entropic[0].distortion == pytest.approx(exact[0].distortion, rel=0.2)


def test_rd_curve_passes_the_solver_choice_through():
    # given: a graph with equal weights (its levels are assignments with capacities, which
    # the compiled solver takes) and one with uneven weights (which it cannot)
    X, C = graph(5, 24)
    levels = [2, 5, 12]
    # when
    compiled = rd_curve(X, C, levels, solver="compiled", backend="numpy")
    reference = rd_curve(X, C, levels, solver="reference", backend="numpy")
    # then: the same curve, and the compiled solver's refusal reaches the caller
    assert [p.distortion for p in compiled] == pytest.approx([p.distortion for p in reference], rel=1e-9)
    uneven = np.random.default_rng(5).uniform(1, 2, 24)
    with pytest.raises(ValueError, match="solver='compiled' cannot solve problem 0"):
        rd_curve(X, C, levels, weights=uneven, solver="compiled", backend="numpy")


def test_rd_curve_split_calls_share_one_curve():
    X, C = graph(4, 16)
    whole = rd_curve(X, C, [2, 4, 8, 16], backend="numpy")
    parts = rd_curve(X, C, [2, 4], backend="numpy") + rd_curve(X, C, [8, 16], backend="numpy")
    assert [p.level for p in whole] == [p.level for p in parts]
    # batched with other sizes the solver pads, which may move the last bit only
    assert [p.distortion for p in whole] == pytest.approx([p.distortion for p in parts], rel=1e-12)


# --------------------------------------------------------------------------- knee: clean curves


def _grid(n: int, lo: float, hi: float, spacing: str) -> np.ndarray:
    return np.linspace(lo, hi, n) if spacing == "lin" else np.geomspace(lo, hi, n)


CLEAN_CURVES = {
    "exp-fast": (0.0, 1.0, "lin", lambda x: np.exp(-x / 0.1)),
    "exp": (0.0, 1.0, "lin", lambda x: np.exp(-x / 0.2)),
    "exp-slow": (0.0, 1.0, "lin", lambda x: np.exp(-x / 0.35)),
    "inverse": (1.0, 10.0, "lin", lambda x: 1.0 / x),
    "inverse-shifted": (0.0, 5.0, "lin", lambda x: 1.0 / (x + 0.3)),
    "power": (1.0, 20.0, "lin", lambda x: x**-0.5),
    "rate-distortion": (0.02, 1.0, "lin", lambda x: 0.5 * np.log2(1.0 / x)),
    "rate-distortion-log-grid": (0.01, 1.0, "geom", lambda x: 0.5 * np.log2(1.0 / x)),
    "levels-sse": (1.0, 40.0, "lin", lambda k: 100.0 / k + 3.0),
    "elbow": (0.0, 1.0, "lin", lambda x: np.maximum(1 - 3 * x, 0.3 - 0.3 * x)),
}


def kneed_index(x: np.ndarray, y: np.ndarray) -> int | None:
    knee = KneeLocator(x, y, curve="convex", direction="decreasing").knee
    return None if knee is None else int(np.flatnonzero(x == knee)[0])


@pytest.mark.parametrize("name", sorted(CLEAN_CURVES))
@pytest.mark.parametrize("n", [5, 7, 10, 16, 25, 40, 64, 100])
def test_knee_matches_kneed_on_clean_curves(name, n):
    lo, hi, spacing, f = CLEAN_CURVES[name]
    x = _grid(n, lo, hi, spacing)
    y = f(x)
    expected = kneed_index(x, y)
    if expected is None:
        pytest.skip("kneed finds no knee (S=1 threshold) on this grid")
    assert knee_index(x, y) == expected


def test_knee_none_and_errors():
    assert knee_index([0.0, 1.0], [1.0, 0.0]) is None
    assert knee_index(np.arange(5.0), 4.0 - np.arange(5.0)) is None  # a line
    assert knee_index(np.arange(5.0), np.arange(5.0)) is None  # increasing
    with pytest.raises(ValueError, match="increasing"):
        knee_index([0.0, 0.0, 1.0], [3.0, 2.0, 1.0])
    with pytest.raises(ValueError):
        knee_index([0.0, 1.0, 2.0], [1.0, 0.5])


# --------------------------------------------------------------------------- knee: noise

NOISY_CURVES = [
    "exp-fast",
    "exp",
    "exp-slow",
    "inverse",
    "power",
    "rate-distortion",
    "rate-distortion-log-grid",
    "levels-sse",
    "elbow",
]
NOISE = 0.01  # "1% noise": every value moves by at most 1% (of itself, or of the range)


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(NOISY_CURVES),
    n=st.integers(5, 30),
    kind=st.sampled_from(["multiplicative", "additive"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_knee_stays_within_one_grid_point_under_1pct_noise(name, n, kind, seed):
    lo, hi, spacing, f = CLEAN_CURVES[name]
    x = _grid(n, lo, hi, spacing)
    y = f(x)
    clean = knee_index(x, y)
    u = np.random.default_rng(seed).uniform(-NOISE, NOISE, n)
    noisy = y * (1 + u) if kind == "multiplicative" else y + u * (y.max() - y.min())

    found = knee_index(x, noisy)

    assert found is not None and abs(found - clean) <= 1


def test_plain_successive_menger_curvature_is_not_robust():
    """The reason for the anchored, smoothed criterion: the local one jumps."""
    x = np.linspace(0.0, 1.0, 30)
    y = np.exp(-x / 0.35)

    def successive_menger(x: np.ndarray, y: np.ndarray) -> int:
        xn, yn = (x - x[0]) / (x[-1] - x[0]), (y - y.min()) / (y.max() - y.min())
        a = np.stack([xn[:-2], yn[:-2]], 1)
        b = np.stack([xn[1:-1], yn[1:-1]], 1)
        c = np.stack([xn[2:], yn[2:]], 1)
        cross = np.abs((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])
        norms = np.linalg.norm(b - a, axis=1) * np.linalg.norm(c - b, axis=1) * np.linalg.norm(c - a, axis=1)
        return int(np.argmax(2 * cross / norms)) + 1

    clean, local_clean = knee_index(x, y), successive_menger(x, y)
    jumps = ours = 0
    for seed in range(50):
        noisy = y + np.random.default_rng(seed).uniform(-NOISE, NOISE, 30) * (y.max() - y.min())
        jumps += abs(successive_menger(x, noisy) - local_clean) > 1
        ours += abs(knee_index(x, noisy) - clean) > 1
    assert jumps > 10 and ours == 0


# --------------------------------------------------------------------------- knee_point, tracker


def rd_points(levels: list[int], variance: float = 1.0) -> list[RDPoint]:
    out = []
    for k in levels:
        d = variance * (k**-1.2 if k < levels[-1] else 0.0)
        out.append(RDPoint(level=k, rate=rate(d, variance), distortion=d))
    return out


def test_knee_point_on_rate_distortion_axes():
    points = rd_points([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64])
    usable = [p for p in points if p.distortion > 0]
    x = np.array([p.distortion for p in usable])[::-1]
    y = np.array([p.rate for p in usable])[::-1]
    expected = usable[::-1][kneed_index(x, y)]

    assert knee_point(points[::-1]) == expected  # order of input does not matter
    assert knee_point(points[:2]) is None
    assert knee_point(points[-3:]) is None  # one lossless point: 2 usable left


def test_knee_point_on_level_axes():
    points = rd_points([1, 2, 3, 4, 6, 8, 12, 16, 24, 32])
    x = np.array([p.level for p in points], dtype=float)
    y = np.array([p.distortion for p in points])
    assert knee_point(points, axes="level") == points[kneed_index(x, y)]
    with pytest.raises(ValueError, match="axes"):
        knee_point(points, axes="nodes")


@settings(max_examples=30, deadline=None)
@given(order=st.permutations(list(range(12))))
def test_tracker_incremental_knee_equals_batch(order):
    points = rd_points([1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32])
    tracker = RDTracker()
    for step, i in enumerate(order, start=1):
        knee = tracker.add(points[i])
        added = [points[j] for j in order[:step]]
        assert knee == knee_point(added) == tracker.knee
        assert [p.level for p in tracker.points] == sorted(p.level for p in added)
    assert len(tracker) == 12 and tracker.knee == knee_point(points)


def test_tracker_replaces_a_level():
    points = rd_points([1, 2, 4, 8, 16, 32])
    tracker = RDTracker(points)
    refined = RDPoint(level=4, rate=rate(0.2, 1.0), distortion=0.2)
    tracker.add(refined)
    assert len(tracker) == 6 and tracker.points[2] == refined
    assert tracker.knee == knee_point([*points[:2], refined, *points[3:]])
    assert RDTracker(points[:2]).knee is None


def test_knee_constants_are_documented_choices():
    assert 0 < rd.KNEE_CONVEXITY_RTOL < 1e-6 and rd.KNEE_NOISE_Z > 1 and rd.LOSSLESS_RTOL < 1e-9
