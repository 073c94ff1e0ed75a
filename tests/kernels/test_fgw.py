"""FGW kernels against POT (``ot.gromov``), on every installed backend."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import ot
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kernels import assignment
from kernels import backend as bk
from kernels import fgw as fgw_module
from kernels.fgw import DEFAULT_MAX_ITER, FGWResult, fgw, fgw_batch
from kernels.graphs import coarsen_levels
from tests.kernels.conftest import random_graph, random_problem

EXACT_RTOL = 1e-7  # the bar: same objective as POT to 1e-7 relative
ENTROPIC_RTOL = 1e-6  # the bar where POT converges
MARGINAL_ATOL = 1e-9
ZERO_ATOL = 1e-12  # "zero" objective: sums of about n^2 terms of size 1e-16
SAME_RTOL = 1e-9  # one code path vs another over the same arithmetic (batching, transposes)

HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def pot_exact(M: np.ndarray, C1: np.ndarray, C2: np.ndarray, p: Any, q: Any, alpha: float) -> float:
    return float(ot.gromov.fused_gromov_wasserstein2(M, C1, C2, p, q, alpha=alpha))


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), ZERO_ATOL)


def not_worse(ours: float, ref: float) -> bool:
    return ours <= ref + EXACT_RTOL * abs(ref) + ZERO_ATOL


def numpy_plan(res: FGWResult) -> np.ndarray:
    return np.asarray(bk.to_numpy(res.plan), dtype=np.float64)


# --------------------------------------------------------------------------- exact vs POT


def test_exact_matches_pot_on_99_percent_of_random_problems() -> None:
    # given: shortest-path and 0/1 adjacency graphs, n and m from 2 to 128, unequal
    # sizes, uniform and non-uniform weights, several trade-offs
    rng = np.random.default_rng(20240611)
    sizes = [(int(rng.integers(2, 41)), int(rng.integers(2, 41))) for _ in range(180)]
    sizes += [(n, n) for n in rng.integers(2, 41, size=30)]
    sizes += [(64, 64), (96, 80), (128, 128), (128, 100), (70, 128)]
    mismatches = 0
    for k, (n, m) in enumerate(sizes):
        kind = ("sp", "adj")[k % 2]
        prob = random_problem(rng, n, m, kind=kind, uniform=k % 3 != 0)
        alpha = (0.5, 0.2, 0.8)[k % 3]
        # when
        ours = fgw(*prob, alpha=alpha, return_plan=True)
        ref = pot_exact(*prob, alpha=alpha)
        # then: never worse than POT, equal almost always, marginals exact
        assert ours.converged
        assert not_worse(ours.distance, ref), (n, m, kind)
        mismatches += rel(ours.distance, ref) > EXACT_RTOL
        plan = numpy_plan(ours)
        np.testing.assert_allclose(plan.sum(axis=1), prob[3], rtol=0, atol=MARGINAL_ATOL)
        np.testing.assert_allclose(plan.sum(axis=0), prob[4], rtol=0, atol=MARGINAL_ATOL)
        assert plan.min() >= 0
    assert mismatches <= 0.01 * len(sizes)


@HYPOTHESIS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 24),
    m=st.integers(2, 24),
    kind=st.sampled_from(["sp", "adj"]),
    uniform=st.booleans(),
    alpha=st.floats(0.05, 0.95),
)
def test_exact_never_worse_than_pot(
    seed: int, n: int, m: int, kind: str, uniform: bool, alpha: float
) -> None:
    prob = random_problem(np.random.default_rng(seed), n, m, kind=kind, uniform=uniform)
    ours = fgw(*prob, alpha=alpha)
    ref = pot_exact(*prob, alpha=alpha)
    assert not_worse(ours.distance, ref)


def test_exact_ties_still_optimal_value() -> None:
    # given: identical structure, no feature information: every permutation of a
    # vertex-transitive graph (a cycle) is optimal, so the LP has many ties
    n = 12
    A = np.zeros((n, n))
    A[np.arange(n), (np.arange(n) + 1) % n] = 1
    A = A + A.T
    M = np.zeros((n, n))
    # when
    ours = fgw(M, A, A, alpha=0.7)
    ref = pot_exact(M, A, A, None, None, 0.7)
    # then: the plans may differ, the objective may not be worse
    assert not_worse(ours.distance, ref)


@pytest.mark.parametrize("kind", ["sp", "adj"])
def test_exact_equals_pot_when_features_cannot_break_ties(kind: str) -> None:
    # given: categorical node labels (feature cost 0/1) or no feature term at all,
    # so the linear subproblems have many exactly tied optima
    rng = np.random.default_rng(31)
    for k in range(30):
        n = int(rng.integers(3, 24))
        m = n if k % 2 else int(rng.integers(3, 24))
        C1, C2 = random_graph(rng, n, kind), random_graph(rng, m, kind)
        labels1, labels2 = rng.integers(0, 3, n), rng.integers(0, 3, m)
        M = (labels1[:, None] != labels2[None, :]).astype(float)
        for alpha in (0.5, 1.0):
            # when
            ours = fgw(M, C1, C2, alpha=alpha)
            ref = pot_exact(M, C1, C2, None, None, alpha)
            # then: the same local optimum as POT, not merely an as-good one
            assert rel(ours.distance, ref) <= EXACT_RTOL, (k, n, m, alpha)


def test_exact_on_every_backend(xp: ModuleType, on: Callable[[np.ndarray], Any]) -> None:
    rng = np.random.default_rng(7)
    for n, m, uniform in [(9, 9, True), (12, 7, False), (16, 16, False), (5, 11, True)]:
        prob = random_problem(rng, n, m, kind="sp", uniform=uniform)
        ours = fgw(*(on(a) for a in prob), return_plan=True)
        assert rel(ours.distance, pot_exact(*prob, alpha=0.5)) <= EXACT_RTOL
        assert bk.get_backend(ours.plan).__name__ == xp.__name__
        plan = numpy_plan(ours)
        np.testing.assert_allclose(plan.sum(axis=1), prob[3], rtol=0, atol=MARGINAL_ATOL)


def test_identical_graphs_give_zero(xp: ModuleType, on: Callable[[np.ndarray], Any]) -> None:
    rng = np.random.default_rng(3)
    for n, kind in [(2, "sp"), (10, "adj"), (25, "sp")]:
        C = random_graph(rng, n, kind)
        F = rng.normal(size=(n, 2))
        M = ((F[:, None] - F[None]) ** 2).sum(-1)
        res = fgw(on(M), on(C), on(C), return_plan=True)
        assert abs(res.distance) <= ZERO_ATOL
        np.testing.assert_allclose(numpy_plan(res), np.eye(n) / n, atol=MARGINAL_ATOL)


@HYPOTHESIS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 20),
    m=st.integers(2, 20),
    method=st.sampled_from(["exact", "entropic"]),
)
def test_swapping_graphs_gives_same_value(seed: int, n: int, m: int, method: str) -> None:
    M, C1, C2, p, q = random_problem(np.random.default_rng(seed), n, m, uniform=False)
    a = fgw(M, C1, C2, p, q, method=method)
    b = fgw(M.T, C2, C1, q, p, method=method)
    # an entropic run that stops unconverged (Sinkhorn crawling on nearly equal
    # marginals at eps=1e-2; POT does not converge there either) has no value to compare
    assume(method == "exact" or (a.converged and b.converged))
    assert rel(a.distance, b.distance) <= (SAME_RTOL if method == "exact" else ENTROPIC_RTOL)


def test_non_symmetric_structures_match_pot() -> None:
    rng = np.random.default_rng(11)
    for n, m in [(6, 8), (15, 15), (20, 12)]:
        M, _, _, p, q = random_problem(rng, n, m, uniform=False)
        C1, C2 = rng.random((n, n)), rng.random((m, m))
        assert rel(fgw(M, C1, C2, p, q).distance, pot_exact(M, C1, C2, p, q, 0.5)) <= EXACT_RTOL


# --------------------------------------------------------------------------- entropic vs POT


def pot_entropic(prob: tuple[np.ndarray, ...], epsilon: float) -> tuple[float, bool]:
    """POT's value and whether it converged: outer loop under ``max_iter`` and plan on
    its marginals (POT's inner Sinkhorn stops at 1000 iterations, converged or not)."""
    M, C1, C2, p, q = prob
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, log = ot.gromov.entropic_fused_gromov_wasserstein2(
            M, C1, C2, p, q, epsilon=epsilon, solver="PGD", log=True
        )
    plan = log["T"]
    outer = len(log["err"]) * 10 < DEFAULT_MAX_ITER["entropic"]
    marginals = max(np.abs(plan.sum(1) - p).sum(), np.abs(plan.sum(0) - q).sum()) < 1e-8
    return float(value), outer and marginals


def test_entropic_matches_pot_where_pot_converges() -> None:
    rng = np.random.default_rng(5)
    compared = 0
    for n, m, eps in [(10, 10, 1e-2), (16, 12, 1e-2), (20, 20, 5e-2), (14, 18, 1e-1), (24, 24, 1e-2)]:
        prob = random_problem(rng, n, m, uniform=n % 2 == 0)
        ref, pot_converged = pot_entropic(prob, eps)
        ours = fgw(*prob, method="entropic", epsilon=eps)
        if not pot_converged:
            continue
        compared += 1
        assert ours.converged
        assert rel(ours.distance, ref) <= ENTROPIC_RTOL, (n, m, eps)
    assert compared >= 3


def test_entropic_on_every_backend(xp: ModuleType, on: Callable[[np.ndarray], Any]) -> None:
    prob = random_problem(np.random.default_rng(8), 12, 9, uniform=False)
    ref = fgw(*prob, method="entropic", epsilon=5e-2, backend="numpy", return_plan=True)
    ours = fgw(*(on(a) for a in prob), method="entropic", epsilon=5e-2, return_plan=True)
    assert ours.converged and ref.converged
    assert rel(ours.distance, ref.distance) <= SAME_RTOL * 10
    plan = numpy_plan(ours)
    assert np.abs(plan.sum(axis=1) - prob[3]).sum() <= 1e-8
    assert np.abs(plan.sum(axis=0) - prob[4]).sum() <= 1e-8


def test_entropic_float32_small_epsilon_is_finite_and_close() -> None:
    # at epsilon=1e-2 the plain kernel exp(-C/eps) underflows float32 (exp(-200))
    rng = np.random.default_rng(9)
    for n, m in [(16, 16), (32, 24)]:
        prob = random_problem(rng, n, m)
        ref = fgw(*prob, method="entropic", epsilon=1e-2)
        f32 = [a.astype(np.float32) for a in prob]
        ours = fgw(*f32, method="entropic", epsilon=1e-2, return_plan=True)
        assert np.isfinite(ours.distance)
        assert np.all(np.isfinite(ours.plan))
        assert ours.plan.dtype == np.float32
        assert rel(ours.distance, ref.distance) <= 1e-4


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_entropic_column_far_above_the_rest_keeps_its_mass(dtype: type) -> None:
    # a node whose features are 50 cost units from everything: at epsilon=1e-2 its
    # whole kernel column is exp(-5000) = 0 in any float, yet it must receive its mass
    M, C1, C2, p, q = random_problem(np.random.default_rng(17), 8, 9, uniform=False)
    M[:, -1] += 50.0
    res = fgw(*(a.astype(dtype) for a in (M, C1, C2, p, q)), method="entropic", return_plan=True)
    plan = np.asarray(res.plan, dtype=np.float64)
    assert np.all(np.isfinite(plan)) and np.isfinite(res.distance)
    tol = 1e-8 if dtype == np.float64 else 1e-5
    assert np.abs(plan.sum(axis=0) - q).sum() <= tol
    assert np.abs(plan.sum(axis=1) - p).sum() <= tol


def test_entropic_stops_on_adjacency_input_where_pot_cycles() -> None:
    # given: a 0/1 adjacency pair on which POT's PGD at epsilon=1e-2 keeps moving
    # (plan change still ~0.3 after 300 iterations: it cycles, and with its defaults
    # runs 1000 outer iterations of up to 1000 Sinkhorn iterations each)
    prob = random_problem(np.random.default_rng(0), 10, 10, kind="adj")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, log = ot.gromov.entropic_fused_gromov_wasserstein(
            *prob, epsilon=1e-2, max_iter=300, numItermax=200, log=True
        )
    assert float(log["err"][-1]) > 1e-3
    # when
    res = fgw(*prob, method="entropic", epsilon=1e-2)
    short = fgw(*prob, method="entropic", epsilon=1e-2, max_iter=20)
    # then: bounded, finite, and honest about it
    assert res.n_iter <= DEFAULT_MAX_ITER["entropic"] and not res.converged
    assert np.isfinite(res.distance)
    assert short.n_iter == 20 and not short.converged


# --------------------------------------------------------------------------- batching


@pytest.mark.parametrize("method", ["exact", "entropic"])
def test_batch_equals_one_by_one(method: str) -> None:
    rng = np.random.default_rng(12)
    problems = [
        random_problem(rng, n, m, kind=kind, uniform=u)
        for n, m, kind, u in [
            (5, 9, "sp", True),
            (12, 12, "adj", True),
            (20, 7, "sp", False),
            (3, 3, "sp", True),
            (16, 16, "sp", False),
        ]
    ]
    problems.append((problems[0][0], problems[0][1], problems[0][2], None, None))
    batch = fgw_batch(problems, method=method, epsilon=5e-2, return_plan=True)
    for prob, b in zip(problems, batch, strict=True):
        one = fgw(*prob, method=method, epsilon=5e-2, return_plan=True)
        assert rel(b.distance, one.distance) <= SAME_RTOL
        assert b.converged == one.converged
        if method == "exact":  # entropic: batch-mates may tighten a projection, shifting n_iter
            assert b.n_iter == one.n_iter
        assert b.plan.shape == one.plan.shape
        np.testing.assert_allclose(b.plan, one.plan, atol=1e-9)


@pytest.mark.parametrize("method", ["exact", "entropic"])
def test_zero_weight_padding_changes_nothing(method: str) -> None:
    # given: the same problem with extra nodes of zero weight and arbitrary structure
    rng = np.random.default_rng(13)
    M, C1, C2, p, q = random_problem(rng, 10, 8, uniform=False)
    extra_n, extra_m = 4, 6
    Mp = rng.random((10 + extra_n, 8 + extra_m))
    Mp[:10, :8] = M
    C1p = random_graph(rng, 10 + extra_n, "sp")
    C1p[:10, :10] = C1
    C2p = random_graph(rng, 8 + extra_m, "sp")
    C2p[:8, :8] = C2
    pp, qp = np.concatenate([p, np.zeros(extra_n)]), np.concatenate([q, np.zeros(extra_m)])
    # when
    plain = fgw(M, C1, C2, p, q, method=method, epsilon=5e-2)
    padded = fgw(Mp, C1p, C2p, pp, qp, method=method, epsilon=5e-2, return_plan=True)
    # then
    assert rel(padded.distance, plain.distance) <= SAME_RTOL
    assert np.all(padded.plan[10:, :] == 0) and np.all(padded.plan[:, 8:] == 0)


@pytest.mark.parametrize("method", ["exact", "entropic"])
def test_chunking_changes_nothing(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(15)
    problems = [random_problem(rng, int(n), int(n) + 2) for n in rng.integers(3, 14, size=12)]
    whole = fgw_batch(problems, method=method, epsilon=5e-2)
    monkeypatch.setitem(fgw_module.MAX_BATCH_ENTRIES, method, 300)  # chunks of 1-3 pairs
    chunked = fgw_batch(problems, method=method, epsilon=5e-2)
    for a, b in zip(whole, chunked, strict=True):
        assert rel(a.distance, b.distance) <= SAME_RTOL


def test_batch_of_many_pairs_one_call_matches_pot() -> None:
    rng = np.random.default_rng(14)
    problems = [random_problem(rng, 16, 16, kind="adj" if k % 2 else "sp") for k in range(40)]
    results = fgw_batch(problems)
    refs = [pot_exact(*prob, alpha=0.5) for prob in problems]
    bad = sum(rel(r.distance, ref) > EXACT_RTOL for r, ref in zip(results, refs, strict=True))
    assert bad <= 1
    assert fgw_batch([]) == []


@pytest.mark.parametrize("kind", ["sp", "adj"])
def test_assignment_path_equals_general_solver(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # given: uniform n == m pairs (the host assignment path), mixed in one batch with
    # pairs it must leave to the general solver (non-uniform weights, non-symmetric
    # structure, n != m), several sizes
    rng = np.random.default_rng(41)
    problems = [random_problem(rng, n, n, kind=kind) for n in (3, 8, 8, 8, 17, 30, 30)]
    problems.append(random_problem(rng, 8, 8, kind=kind, uniform=False))
    problems.append(random_problem(rng, 9, 11, kind=kind))
    M, C1, C2, p, q = random_problem(rng, 8, 8, kind=kind)
    problems.append((M, C1 + np.triu(rng.random((8, 8)) * 0.01, 1), C2, p, q))
    problems.append((M, C1, C2, None, None))
    # graphs against their coarsenings: q = cluster sizes / n, an assignment with capacities
    for n, k in ((20, 3), (20, 7), (31, 11)):
        C = random_graph(rng, n, kind)
        X = rng.normal(size=(n, 2))
        (c,) = coarsen_levels(X, C, np.full(n, 1 / n), [k])
        problems.append((((X[:, None] - c.features[None]) ** 2).sum(-1), C, c.structure, None, c.weights))
    taken = []
    real_solve_many = assignment.solve_many
    monkeypatch.setattr(
        assignment,
        "solve_many",
        lambda stacks, *a, **kw: taken.extend(stacks) or real_solve_many(stacks, *a, **kw),
    )
    # when
    fast = fgw_batch(problems, alpha=0.4, return_plan=True)
    # every pair but the non-uniform (7), the n < m one (8) and those whose feature
    # costs repeat values (POT's arithmetic); the non-symmetric one is handed back
    tie_prone = fgw_module._repeats_values([prob[0] for prob in problems])
    eligible = [k for k in range(len(problems)) if k not in (7, 8) and not tie_prone[k]]
    assert len(eligible) >= 10
    assert sum(stack.M.shape[0] for stack in taken) == len(eligible)
    monkeypatch.setattr(fgw_module, "_run_assignment_pairs", lambda *a: a[2])  # general only
    general = fgw_batch(problems, alpha=0.4, return_plan=True)
    # then: the same iterates, values and plans
    for prob, a, b in zip(problems, fast, general, strict=True):
        assert rel(a.distance, b.distance) <= SAME_RTOL
        assert a.n_iter == b.n_iter and a.converged == b.converged
        np.testing.assert_allclose(numpy_plan(a), numpy_plan(b), atol=1e-9)
        plan = numpy_plan(a)
        n, m = plan.shape
        p = np.full(n, 1 / n) if prob[3] is None else prob[3]
        np.testing.assert_allclose(plan.sum(axis=1), p, rtol=0, atol=MARGINAL_ATOL)


def test_assignment_capacities_tell_which_pairs_are_assignments() -> None:
    # given: pairs of several shapes, each group's pairs together, with weights that do
    # and do not make the linear subproblem an assignment
    cluster = np.array([2.0, 2.0, 3.0, 1.0]) / 8
    cases = [  # (n, m, p, q, qualifies, capacities)
        (8, 8, None, None, True, [1] * 8),
        (8, 8, np.linspace(1, 2, 8) / 12, None, False, None),  # non-uniform p
        (8, 8, None, np.full(8, 1 / 8 + 1e-15), False, None),  # n == m needs q = p exactly
        (8, 4, None, cluster, True, [2, 2, 3, 1]),
        (8, 4, None, cluster * (1 + 1e-13), True, [2, 2, 3, 1]),  # round-off of summed weights
        (8, 4, None, cluster * (1 + 1e-9), False, None),  # not whole multiples of 1/8
        (8, 4, np.zeros(8), cluster, False, None),  # no unit weight
        (8, 4, None, np.array([2.0, 2.0, np.nan, 1.0]) / 8, False, None),
        (9, 4, None, None, False, None),  # 9/4 nodes per cluster
        (9, 4, None, np.array([2.0, 2.0, 4.0, 1.0]) / 9, True, [2, 2, 4, 1]),
    ]
    groups: dict[tuple[int, int], list[int]] = {}
    for k, (n, m, *_) in enumerate(cases):
        groups.setdefault((n, m), []).append(k)
    order = [k for ks in groups.values() for k in ks]
    # when
    w, ok, cap = fgw_module._assignment_capacities(
        [cases[k][2] for k in order], [cases[k][3] for k in order], groups
    )
    # then
    at = 0
    for row, k in enumerate(order):
        n, m, p, _, qualifies, capacities = cases[k]
        assert bool(ok[row]) == qualifies, k
        if qualifies:
            assert w[row] == 1 / n
            assert cap[at : at + m].tolist() == capacities
        at += m


def test_tie_test_counts_repeats() -> None:
    # given: continuous costs with one stray repeat, and categorical costs
    rng = np.random.default_rng(42)
    stray = rng.random((40, 40))
    stray[3, 5] = stray[3, 9]
    labels = (rng.integers(0, 3, 40)[:, None] != rng.integers(0, 3, 40)[None, :]).astype(float)
    tiny = np.array([[0.0, 1.0], [1.0, 1.0]])
    # when
    hits = fgw_module._repeats_values([stray, labels, tiny, rng.random((40, 40))])
    # then: a stray repeat is not tie-prone, labels and any repeat in a tiny cost are
    assert hits == [False, True, True, False]


def _repeats_by_definition(M: np.ndarray) -> bool:
    rows, cols = np.sort(M, axis=1), np.sort(M, axis=0)
    repeats = np.count_nonzero(rows[:, 1:] == rows[:, :-1]) + np.count_nonzero(cols[1:] == cols[:-1])
    return bool(repeats >= max(1.0, fgw_module.TIE_FRACTION * M.size))


def test_tie_test_float32_screen_agrees_with_definition() -> None:
    # given: costs whose values collide only once rounded to float32 (1e-12 apart or
    # beyond its range), and costs with exact repeats in rows and columns
    rng = np.random.default_rng(7)
    costs = []
    for k in range(24):
        M = rng.random((32, 32))
        if k % 3 == 0:  # float32-only collisions: many near-equal values
            M[:, :16] = M[:, :1] + 1e-12 * np.arange(1, 17)
        elif k % 3 == 1:  # exact repeats, some above and some below the threshold
            M[:k, 4] = M[0, 3]
        else:  # beyond float32's range: all inf once rounded
            M[:, :12] = 1e300 * (1.0 + rng.random((32, 12)))
        costs.append(M)
    # when
    hits = fgw_module._repeats_values(costs)
    # then: the same verdict as counting row and column repeats in float64
    assert hits == [_repeats_by_definition(M) for M in costs]
    assert not any(hits[0::3]) and not any(hits[2::3])  # float32-only collisions cleared
    assert any(hits[1::3]) and not all(hits[1::3])


# --------------------------------------------------------------------------- inputs


def test_invalid_inputs_are_rejected() -> None:
    M, C1, C2, p, q = random_problem(np.random.default_rng(0), 4, 5)
    with pytest.raises(ValueError, match="shapes"):
        fgw(M.T, C1, C2)
    with pytest.raises(ValueError, match="same mass"):
        fgw(M, C1, C2, p, 2 * q)
    with pytest.raises(ValueError, match="non-negative"):
        fgw(M, C1, C2, -p, q)
    with pytest.raises(ValueError, match="method"):
        fgw(M, C1, C2, method="sinkhorn")
    with pytest.raises(ValueError, match="alpha"):
        fgw(M, C1, C2, alpha=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        fgw(M, C1, C2, method="entropic", epsilon=0.0)


def test_lists_and_defaults() -> None:
    C = [[0.0, 1.0], [1.0, 0.0]]
    res = fgw([[0.0, 1.0], [1.0, 0.0]], C, C)
    assert res.distance == 0.0 and res.plan is None and res.converged


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # POT divides by alpha=0
def test_alpha_extremes_match_pot() -> None:
    prob = random_problem(np.random.default_rng(21), 9, 11, uniform=False)
    for alpha in (0.0, 1.0):
        assert rel(fgw(*prob, alpha=alpha).distance, pot_exact(*prob, alpha=alpha)) <= EXACT_RTOL
    # alpha = 0 is plain optimal transport on the features
    w = float(ot.emd2(prob[3], prob[4], prob[0]))
    assert rel(fgw(*prob, alpha=0.0).distance, w) <= EXACT_RTOL


@pytest.mark.gpu
def test_cupy_entropic_batch_matches_numpy() -> None:
    if not bk.cuda_available():
        pytest.skip("cupy/CUDA not usable")
    import cupy

    rng = np.random.default_rng(30)
    problems = [random_problem(rng, 24, 24) for _ in range(16)]
    ref = fgw_batch(problems, method="entropic", backend="numpy")
    gpu = fgw_batch(problems, method="entropic", backend="cupy", return_plan=True)
    assert isinstance(gpu[0].plan, cupy.ndarray)
    for a, b in zip(gpu, ref, strict=True):
        assert rel(a.distance, b.distance) <= ENTROPIC_RTOL


def test_batched_entropic_padding_rows_stay_finite_beside_large_costs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: a one-node graph padded to the rows of a pair with costs in the tens, whose
    # kernel underflows and sends the whole batch to the log-domain kernel (padding
    # rows of -inf scores gave exp(-inf - -inf) = NaN there)
    rng = np.random.default_rng(31)
    small = random_problem(rng, 1, 9)
    M, C1, C2, p, q = random_problem(rng, 8, 11)
    large = (M * 50.0, C1 * 50.0, C2, p, q)
    monkeypatch.setattr(fgw_module, "_run_entropic_pairs", lambda host, rest, *a: rest)  # batched only
    # when
    together = fgw_batch([small, large], method="entropic", epsilon=0.1)
    alone = [fgw_batch([prob], method="entropic", epsilon=0.1)[0] for prob in (small, large)]
    # then
    for a, b in zip(together, alone, strict=True):
        assert np.isfinite(a.distance) and a.converged == b.converged
        assert rel(a.distance, b.distance) <= 1e-6
