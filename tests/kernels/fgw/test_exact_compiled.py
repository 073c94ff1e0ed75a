"""The compiled exact solver (``kernels.fgw._exact_compiled``): its assignment solver with
column capacities and warm-started prices, and its conditional gradient against POT."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from kernels.fgw import _exact_compiled as compiled
from kernels.fgw import fgw_batch
from kernels.fgw._batch import NOT_FINITE, NOT_SYMMETRIC, OK
from kernels.graphs import coarsen_levels
from tests.kernels.conftest import random_graph, random_problem
from tests.kernels.fgw.conftest import EXACT_RTOL, pot_exact_with_plan


def optimal_cost(cost: np.ndarray, cap: np.ndarray) -> float:
    """The optimum by scipy on the problem with every column repeated ``cap[j]`` times."""
    expanded = np.repeat(cost, cap, axis=1)
    rows, cols = linear_sum_assignment(expanded)
    return float(expanded[rows, cols].sum())


def random_caps(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """``m`` positive capacities summing to ``n``."""
    return np.bincount(np.concatenate([np.arange(m), rng.integers(0, m, n - m)]), minlength=m)


def costs_of_kind(rng: np.random.Generator, n: int, m: int, kind: str) -> np.ndarray:
    if kind == "uniform":
        return rng.random((n, m))
    if kind == "ties":  # few distinct values: many optimal assignments
        return rng.integers(0, 4, (n, m)).astype(np.float64)
    if kind == "rank_one":  # CG's first cost is dominated by such a term
        return -np.outer(rng.random(n), rng.random(m))
    return rng.normal(size=(n, m)) * 1e4  # large magnitudes


# --------------------------------------------------------------------------- assign


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 40),
    data=st.data(),
    kind=st.sampled_from(["uniform", "ties", "rank_one", "large"]),
    warm=st.booleans(),
)
def test_assign_is_optimal_with_capacities_from_any_prices(seed, n, data, kind, warm):
    # given: an n x m cost, capacities summing to n, and arbitrary starting prices
    rng = np.random.default_rng(seed)
    m = data.draw(st.integers(1, n))
    cap = random_caps(rng, n, m)
    cost = costs_of_kind(rng, n, m, kind)
    prices = rng.normal(size=m) * cost.std() * 3 if warm else None
    # when
    x = compiled.assign(cost, cap, prices)
    # then: a feasible assignment of optimal cost
    np.testing.assert_array_equal(np.bincount(x, minlength=m), cap)
    best = optimal_cost(cost, cap)
    assert abs(cost[np.arange(n), x].sum() - best) <= 1e-9 * max(1.0, abs(best))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30), extra=st.integers(1, 6), warm=st.booleans())
def test_columns_without_capacity_are_passed_over(seed, n, extra, warm):
    # given: more columns than rows, some of them with no capacity at all (a full
    # column with no rows: the search settles it and must go on past it)
    rng = np.random.default_rng(seed)
    m = n + extra
    cap = np.bincount(rng.integers(0, m, n), minlength=m)
    assert (cap == 0).any()
    cost = rng.random((n, m))
    prices = rng.normal(size=m) if warm else None
    # when
    x = compiled.assign(cost, cap, prices)
    # then: no row lands in a column without capacity, and the cost is optimal
    np.testing.assert_array_equal(np.bincount(x, minlength=m), cap)
    best = optimal_cost(cost, cap)
    assert abs(cost[np.arange(n), x].sum() - best) <= 1e-9 * max(1.0, abs(best))


@pytest.mark.parametrize("kind", ["uniform", "ties", "rank_one", "large"])
def test_assign_leaves_optimal_prices(kind):
    # given: a square cost, solved from zero prices
    rng = np.random.default_rng(3)
    cost = costs_of_kind(rng, 30, 30, kind)
    prices = np.zeros(30)
    x = compiled.assign(cost, prices=prices)
    # then: the prices certify the assignment (what the next CG iteration starts from):
    # every row's column attains its row minimum of the reduced costs cost - prices
    reduced = cost - prices[None, :]
    row_min = reduced.min(axis=1)
    np.testing.assert_allclose(reduced[np.arange(30), x], row_min, rtol=0, atol=1e-9 * np.abs(cost).max())
    assert sorted(x.tolist()) == list(range(30))


@pytest.mark.parametrize("seed", range(5))
def test_rank_one_prices_are_optimal_duals(seed):
    # given: the costs -beta a_i b_j with capacities (CG's first cost without M)
    rng = np.random.default_rng(seed)
    n, m = 40, 7
    a, b, cap = rng.random(n), rng.random(m), random_caps(rng, n, m)
    beta = 2.5
    cost = -beta * np.outer(a, b)
    prices = np.empty(m)
    # when
    compiled.rank_one_prices(a, b, beta, cap, prices)
    # then: with these prices, filling the columns in increasing b with the rows in
    # increasing a puts every row on a column of minimal reduced cost, and it is optimal
    rows_sorted, cols_sorted = np.argsort(a, kind="stable"), np.argsort(b, kind="stable")
    x = np.empty(n, dtype=np.int64)
    x[rows_sorted] = np.repeat(cols_sorted, cap[cols_sorted])
    reduced = cost - prices[None, :]
    np.testing.assert_allclose(reduced[np.arange(n), x], reduced.min(axis=1), atol=1e-12)
    assert cost[np.arange(n), x].sum() == pytest.approx(optimal_cost(cost, cap), rel=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_assign_rejects_non_finite_costs_without_hanging(bad):
    cost = np.random.default_rng(0).random((6, 6))
    cost[:, 2] = bad  # no finite way to fill column 2
    with pytest.raises(ValueError, match="finite"):
        compiled.assign(cost)


@pytest.mark.parametrize("bad", [np.nan, -np.inf, np.inf])
def test_assign_rejects_non_finite_prices_by_name(bad):
    # a price of -inf made every column look free of charge: a wrong answer, not an error
    prices = np.array([bad, 0.0])
    with pytest.raises(ValueError, match="prices must be finite"):
        compiled.assign(np.array([[0.0, 1.0], [1.0, 0.0]]), prices=prices)


def test_assign_rejects_capacities_that_do_not_fit():
    with pytest.raises(ValueError, match="summing"):
        compiled.assign(np.zeros((4, 2)), np.array([1, 2]))


# --------------------------------------------------------------------------- CG vs POT


@pytest.mark.parametrize("kind", ["sp", "adj"])
def test_square_pairs_match_pot_values_and_plans(kind):
    # given: uniform n == m pairs of several sizes
    rng = np.random.default_rng(5)
    for n in (2, 5, 16, 33):
        problems = [random_problem(rng, n, n, kind=kind) for _ in range(6)]
        M, C1, C2 = (np.stack([prob[i] for prob in problems]) for i in range(3))
        # when
        out = compiled.solve_pairs(M, C1, C2, np.full(6, 1 / n), None, 0.5, 10_000, 1e-9, return_plan=True)
        # then: POT's values, and its plans (vertices and steps are the same)
        assert (out.status == OK).all() and out.converged.all()
        for k, prob in enumerate(problems):
            value, plan = pot_exact_with_plan(*prob, alpha=0.5)
            assert abs(out.distance[k] - value) <= EXACT_RTOL * max(abs(value), 1e-12)
            np.testing.assert_allclose(out.plans[k], plan, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9])
def test_graph_against_its_coarsenings_matches_pot(alpha):
    # given: a graph and its coarsenings: q is the cluster sizes times 1/n (capacities)
    rng = np.random.default_rng(11)
    n = 64
    C = random_graph(rng, n, "sp")
    X = rng.normal(size=(n, 3))
    p = np.full(n, 1 / n)
    for c in coarsen_levels(X, C, p, [2, 5, 13, 40], alpha=alpha):
        M = ((X[:, None, :] - c.features[None, :, :]) ** 2).sum(-1)
        cap = np.bincount(c.mapping)
        # when
        out = compiled.solve_pairs(
            M[None],
            C[None],
            c.structure[None],
            np.array([1 / n]),
            cap[None],
            alpha,
            10_000,
            1e-9,
            return_plan=True,
        )
        # then
        value, plan = pot_exact_with_plan(M, C, c.structure, p, c.weights, alpha)
        assert out.status[0] == OK
        assert abs(out.distance[0] - value) <= EXACT_RTOL * abs(value)
        np.testing.assert_allclose(out.plans[0], plan, atol=1e-12)
        np.testing.assert_allclose(out.plans[0].sum(axis=0), c.weights, atol=1e-12)


def test_threads_change_nothing():
    rng = np.random.default_rng(2)
    problems = [random_problem(rng, 12, 12) for _ in range(70)]  # several tasks of 16
    M, C1, C2 = (np.stack([prob[i] for prob in problems]) for i in range(3))
    w = np.full(70, 1 / 12)
    one = compiled.solve_pairs(M, C1, C2, w, None, 0.5, 10_000, 1e-9, threads=1)
    two = compiled.solve_pairs(M, C1, C2, w, None, 0.5, 10_000, 1e-9, threads=2)
    np.testing.assert_array_equal(one.distance, two.distance)
    np.testing.assert_array_equal(one.n_iter, two.n_iter)


def test_pairs_it_cannot_take_are_handed_back():
    # given: a non-symmetric structure and a non-finite feature cost among good pairs
    rng = np.random.default_rng(4)
    problems = [random_problem(rng, 8, 8) for _ in range(3)]
    M, C1, C2 = (np.stack([prob[i] for prob in problems]) for i in range(3))
    C1[1, 0, 3] += 0.25
    M[2, :, 5] = np.inf
    # when
    out = compiled.solve_pairs(M, C1, C2, np.full(3, 1 / 8), None, 0.5, 10_000, 1e-9)
    # then
    assert out.status.tolist() == [OK, NOT_SYMMETRIC, NOT_FINITE]
    assert out.distance[0] == pytest.approx(pot_exact_with_plan(*problems[0], alpha=0.5)[0], rel=EXACT_RTOL)


def coarsening_stacks(C: np.ndarray, X: np.ndarray, levels: list[int]) -> list[compiled.PairStack]:
    """One single-pair group per level, every one a view of the same ``C`` (an RD curve)."""
    n = len(C)
    stacks = []
    for c in coarsen_levels(X, C, np.full(n, 1 / n), levels):
        M = ((X[:, None, :] - c.features[None, :, :]) ** 2).sum(-1)
        cap = np.bincount(c.mapping)[None]
        stacks.append(compiled.PairStack(M[None], C[None], c.structure[None], np.array([1 / n]), cap))
    return stacks


def test_a_structure_shared_by_single_pair_groups_is_checked_once():
    # given: the levels of an RD curve, all sharing the graph's structure, and the same
    # levels each with a copy of it
    rng = np.random.default_rng(12)
    C = random_graph(rng, 48, "sp")
    X = rng.normal(size=(48, 2))
    stacks = coarsening_stacks(C, X, [3, 9, 20])
    copies = [compiled.PairStack(s.M, s.C1.copy(), s.C2, s.w, s.cap) for s in stacks]
    # when
    shared = compiled.solve_many(stacks, 0.5, 10_000, 1e-9)
    # then: the shared structure is checked before the solve (so not per pair inside
    # it), copies are left to the pairs, and the values are those of separate solves
    inputs = [(s.M, s.C1, s.C2, s.w, s.cap) for s in stacks]
    assert [bool(v.all()) for v in compiled.shared_structures_checked(inputs)] == [True] * 3
    copied = [(s.M, s.C1, s.C2, s.w, s.cap) for s in copies]
    assert [bool(v.any()) for v in compiled.shared_structures_checked(copied)] == [False] * 3
    for stack, out in zip(stacks, shared, strict=True):
        (alone,) = compiled.solve_many([stack], 0.5, 10_000, 1e-9)
        assert out.status[0] == OK
        assert out.distance[0] == alone.distance[0] and out.n_iter[0] == alone.n_iter[0]


@pytest.mark.parametrize("flaw", ["asymmetric", "nan"])
def test_a_flawed_shared_structure_hands_every_pair_back(flaw):
    # given: a shared structure that is not symmetric, or not finite
    rng = np.random.default_rng(13)
    C = random_graph(rng, 30, "sp")
    stacks = coarsening_stacks(C, rng.normal(size=(30, 2)), [4, 11])
    if flaw == "asymmetric":
        C[2, 7] += 0.125
    else:
        C[5, 5] = np.nan
    # when
    outs = compiled.solve_many(stacks, 0.5, 10_000, 1e-9)
    # then
    want = NOT_SYMMETRIC if flaw == "asymmetric" else NOT_FINITE
    assert [out.status[0] for out in outs] == [want, want]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("which", ["M", "C1", "C2"])
def test_a_single_non_finite_entry_anywhere_is_handed_back(bad, which):
    # given: one non-finite entry, at a place that varies with the SIMD lane and tail
    rng = np.random.default_rng(5)
    problems = [random_problem(rng, 37, 37) for _ in range(4)]
    arrays = {name: np.stack([prob[i] for prob in problems]) for i, name in enumerate(["M", "C1", "C2"])}
    for k, (i, j) in enumerate([(0, 0), (36, 36), (17, 5), (3, 30)]):
        arrays[which][k, i, j] = bad
        if which != "M":
            arrays[which][k, j, i] = bad  # keep the structure symmetric
    # when
    out = compiled.solve_pairs(
        arrays["M"], arrays["C1"], arrays["C2"], np.full(4, 1 / 37), None, 0.5, 100, 1e-9
    )
    # then
    assert out.status.tolist() == [NOT_FINITE] * 4


def test_capacities_are_checked():
    M = np.zeros((1, 4, 2))
    with pytest.raises(ValueError, match="cap"):
        compiled.solve_pairs(
            M, np.zeros((1, 4, 4)), np.zeros((1, 2, 2)), np.array([0.25]), np.array([[1, 2]]), 0.5, 10, 1e-9
        )


def test_overflow_inside_the_solve_hands_the_pair_back():
    # given: finite inputs whose objective overflows float64
    rng = np.random.default_rng(6)
    M, C1, C2, _, _ = random_problem(rng, 6, 6)
    # when
    out = compiled.solve_pairs(
        M[None], C1[None] * 1e160, C2[None] * 1e160, np.array([1 / 6]), None, 0.5, 50, 1e-9
    )
    # then: not a NaN reported as solved after max_iter iterations
    assert out.status[0] == NOT_FINITE and out.n_iter[0] < 50


def test_infinite_weights_reach_the_general_validation():
    M, C1, C2, _, _ = random_problem(np.random.default_rng(7), 5, 5)
    inf = np.full(5, np.inf)
    with pytest.raises(ValueError, match="weights must be finite"):
        fgw_batch([(M, C1, C2, inf, inf)])


def test_mismatched_shapes_are_refused_before_compiled_code_runs():
    M = np.zeros((2, 4, 3))
    with pytest.raises(ValueError, match="shapes"):
        compiled.solve_pairs(
            M, np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), np.full(2, 0.25), None, 0.5, 5, 1e-9
        )
    with pytest.raises(ValueError, match="prices"):
        compiled.assign(np.zeros((3, 3)), prices=np.zeros(2))
