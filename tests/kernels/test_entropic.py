"""The compiled entropic path (``kernels.entropic``) against the batched array-API
solver it mirrors, and the pairs it hands back."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import assignment, entropic
from kernels import fgw as fgw_module
from kernels.fgw import fgw_batch
from tests.kernels.conftest import random_problem

SAME_FIXED_POINT_RTOL = 1e-7  # both stop within tol=1e-9 of the same fixed point


def mixed_problems(rng: np.random.Generator) -> list[tuple]:
    specs = [(5, 9, "sp", True), (12, 12, "adj", True), (20, 7, "sp", False), (3, 3, "sp", True)]
    specs += [(16, 16, "sp", False), (16, 16, "sp", False), (9, 14, "adj", False)]
    return [random_problem(rng, n, m, kind=kind, uniform=u) for n, m, kind, u in specs]


def batched_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fgw_module, "_run_entropic_pairs", lambda host, rest, *a: rest)


@pytest.mark.parametrize("epsilon", [1e-2, 5e-2])
def test_compiled_path_equals_the_batched_solver(epsilon: float, monkeypatch: pytest.MonkeyPatch) -> None:
    # given: pairs of several shapes, uniform and not, 0/1 and shortest-path structures
    problems = mixed_problems(np.random.default_rng(21))
    taken = []
    real = entropic.solve_pairs
    monkeypatch.setattr(
        entropic, "solve_pairs", lambda M, *a, **kw: taken.append(len(M)) or real(M, *a, **kw)
    )
    # when
    compiled = fgw_batch(problems, method="entropic", epsilon=epsilon, return_plan=True)
    batched_only(monkeypatch)
    batched = fgw_batch(problems, method="entropic", epsilon=epsilon, return_plan=True)
    # then: every pair took the compiled path, to the same fixed point
    assert sum(taken) == len(problems)
    for prob, a, b in zip(problems, compiled, batched, strict=True):
        assert a.converged == b.converged
        assert abs(a.distance - b.distance) <= SAME_FIXED_POINT_RTOL * abs(b.distance)
        np.testing.assert_allclose(a.plan, b.plan, atol=1e-7)
        if a.converged:  # (a pair whose projections crawl stops early, reported so)
            assert np.abs(a.plan.sum(axis=1) - prob[3]).sum() <= 1e-8
            assert np.abs(a.plan.sum(axis=0) - prob[4]).sum() <= 1e-8
    assert sum(r.converged for r in compiled) >= 4  # most pairs: the comparison means something


def test_pairs_it_cannot_take_go_to_the_batched_solver(monkeypatch: pytest.MonkeyPatch) -> None:
    # given: a zero weight (padding semantics), a non-symmetric structure, and a good pair
    rng = np.random.default_rng(22)
    M, C1, C2, p, q = random_problem(rng, 8, 8, uniform=False)
    p_zero = p.copy()
    p_zero[3] = 0.0
    p_zero /= p_zero.sum()
    skewed = C1.copy()
    skewed[0, 5] += 0.2
    problems = [(M, C1, C2, p_zero, q), (M, skewed, C2, p, q), (M, C1, C2, p, q)]
    # when
    mixed = fgw_batch(problems, method="entropic", epsilon=5e-2)
    batched_only(monkeypatch)
    batched = fgw_batch(problems, method="entropic", epsilon=5e-2)
    # then: the first two are the batched solver's own results, bit for bit
    assert mixed[0].distance == batched[0].distance
    assert mixed[1].distance == batched[1].distance
    assert abs(mixed[2].distance - batched[2].distance) <= SAME_FIXED_POINT_RTOL * batched[2].distance


def test_solver_reports_what_it_hands_back_and_threads_change_nothing() -> None:
    rng = np.random.default_rng(23)
    problems = [random_problem(rng, 10, 10) for _ in range(20)]
    M, C1, C2, p, q = (np.stack([prob[i] for prob in problems]) for i in range(5))
    C1[4, 0, 1] += 0.1
    M[7, 2, 2] = np.nan
    settings = entropic.Settings(1e-9, 1000, 5, 5, 0.1, 200.0, 3, 1e-4, 10.0, 1e-10)
    one = entropic.solve_pairs(M, C1, C2, p, q, 0.5, 5e-2, 1000, 1e-9, settings, threads=1)
    two = entropic.solve_pairs(M, C1, C2, p, q, 0.5, 5e-2, 1000, 1e-9, settings, threads=2)
    assert one.status[4] == assignment.NOT_SYMMETRIC and one.status[7] == assignment.NOT_FINITE
    assert (np.delete(one.status, [4, 7]) == assignment.OK).all()
    np.testing.assert_array_equal(one.distance, two.distance)
    np.testing.assert_array_equal(one.n_iter, two.n_iter)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the batched solver's overflows
def test_scalings_that_overflow_give_the_batched_solvers_answer_not_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: costs tens of units apart at epsilon=1e-2, where Sinkhorn's scalings leave
    # the float range (a division by zero must give inf/NaN as in numpy, not raise)
    M = np.array([[14.9, 40.7], [4.6, 30.0], [36.4, 9.4], [2.8, 13.7]])
    C1 = np.array(
        [[39.4, 37, 25, 28.3], [37, 25.4, 30.7, 55.7], [25, 30.7, 11.2, 33.7], [28.3, 55.7, 33.7, 19]]
    )
    C2 = np.array([[1.8, 1.2], [1.2, 0.2]])
    # when
    (compiled,) = fgw_batch([(M, C1, C2, None, None)], method="entropic", epsilon=1e-2)
    batched_only(monkeypatch)
    (batched,) = fgw_batch([(M, C1, C2, None, None)], method="entropic", epsilon=1e-2)
    # then
    assert compiled.converged == batched.converged
    assert np.isnan(compiled.distance) == np.isnan(batched.distance)
    if not np.isnan(batched.distance):
        assert abs(compiled.distance - batched.distance) <= SAME_FIXED_POINT_RTOL * abs(batched.distance)
