"""The compiled entropic solver (``kernels.fgw._entropic_compiled``) against the reference
solver it mirrors, and the pairs it hands back."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.fgw import _entropic_compiled as compiled
from kernels.fgw import fgw_batch
from kernels.fgw._batch import NOT_FINITE, NOT_SYMMETRIC, OK
from tests.kernels.conftest import random_problem
from tests.kernels.fgw.conftest import SAME_FIXED_POINT_RTOL


def mixed_problems(rng: np.random.Generator) -> list[tuple]:
    specs = [(5, 9, "sp", True), (12, 12, "adj", True), (20, 7, "sp", False), (3, 3, "sp", True)]
    specs += [(16, 16, "sp", False), (16, 16, "sp", False), (9, 14, "adj", False)]
    return [random_problem(rng, n, m, kind=kind, uniform=u) for n, m, kind, u in specs]


@pytest.mark.parametrize("epsilon", [1e-2, 5e-2])
def test_compiled_solver_reaches_the_reference_fixed_point(epsilon: float) -> None:
    # given: pairs of several shapes, uniform and not, 0/1 and shortest-path structures
    problems = mixed_problems(np.random.default_rng(21))
    options = {"method": "entropic", "epsilon": epsilon, "return_plan": True}
    # when: every pair on the compiled solver (it raises for any pair it cannot take)
    compiled_results = fgw_batch(problems, solver="compiled", **options)
    reference = fgw_batch(problems, solver="reference", **options)
    # then: the same fixed point
    for prob, a, b in zip(problems, compiled_results, reference, strict=True):
        assert a.converged == b.converged
        assert abs(a.distance - b.distance) <= SAME_FIXED_POINT_RTOL * abs(b.distance)
        np.testing.assert_allclose(a.plan, b.plan, atol=1e-7)
        if a.converged:  # (a pair whose projections crawl stops early, reported so)
            assert np.abs(a.plan.sum(axis=1) - prob[3]).sum() <= 1e-8
            assert np.abs(a.plan.sum(axis=0) - prob[4]).sum() <= 1e-8
    assert sum(r.converged for r in compiled_results) >= 4  # most pairs: the comparison means something


def test_auto_leaves_the_pairs_it_cannot_take_to_the_reference_solver() -> None:
    # given: a zero weight (padding semantics), a non-symmetric structure, and a good pair
    rng = np.random.default_rng(22)
    M, C1, C2, p, q = random_problem(rng, 8, 8, uniform=False)
    p_zero = p.copy()
    p_zero[3] = 0.0
    p_zero /= p_zero.sum()
    skewed = C1.copy()
    skewed[0, 5] += 0.2
    problems = [(M, C1, C2, p_zero, q), (M, skewed, C2, p, q), (M, C1, C2, p, q)]
    options = {"method": "entropic", "epsilon": 5e-2}
    # when
    auto = fgw_batch(problems, **options)
    reference = fgw_batch(problems, solver="reference", **options)
    (good,) = fgw_batch(problems[2:], solver="compiled", **options)
    # then: the first two are the reference solver's own results, bit for bit, the
    # third the compiled solver's
    assert auto[0].distance == reference[0].distance
    assert auto[1].distance == reference[1].distance
    assert auto[2].distance == good.distance and auto[2].n_iter == good.n_iter
    assert abs(auto[2].distance - reference[2].distance) <= SAME_FIXED_POINT_RTOL * reference[2].distance


def test_solver_reports_what_it_hands_back_and_threads_change_nothing() -> None:
    rng = np.random.default_rng(23)
    problems = [random_problem(rng, 10, 10) for _ in range(20)]
    M, C1, C2, p, q = (np.stack([prob[i] for prob in problems]) for i in range(5))
    C1[4, 0, 1] += 0.1
    M[7, 2, 2] = np.nan
    settings = compiled.Settings.reference()
    one = compiled.solve_pairs(M, C1, C2, p, q, 0.5, 5e-2, 1000, 1e-9, settings, threads=1)
    two = compiled.solve_pairs(M, C1, C2, p, q, 0.5, 5e-2, 1000, 1e-9, settings, threads=2)
    assert one.status[4] == NOT_SYMMETRIC and one.status[7] == NOT_FINITE
    assert (np.delete(one.status, [4, 7]) == OK).all()
    np.testing.assert_array_equal(one.distance, two.distance)
    np.testing.assert_array_equal(one.n_iter, two.n_iter)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference solver's overflows
def test_scalings_that_overflow_give_the_reference_answer_not_an_exception() -> None:
    # given: costs tens of units apart at epsilon=1e-2, where Sinkhorn's scalings leave
    # the float range (a division by zero must give inf/NaN as in numpy, not raise)
    M = np.array([[14.9, 40.7], [4.6, 30.0], [36.4, 9.4], [2.8, 13.7]])
    C1 = np.array(
        [[39.4, 37, 25, 28.3], [37, 25.4, 30.7, 55.7], [25, 30.7, 11.2, 33.7], [28.3, 55.7, 33.7, 19]]
    )
    C2 = np.array([[1.8, 1.2], [1.2, 0.2]])
    # when
    (auto,) = fgw_batch([(M, C1, C2, None, None)], method="entropic", epsilon=1e-2)
    (reference,) = fgw_batch([(M, C1, C2, None, None)], method="entropic", epsilon=1e-2, solver="reference")
    # then
    assert auto.converged == reference.converged
    assert np.isnan(auto.distance) == np.isnan(reference.distance)
    if not np.isnan(reference.distance):
        assert abs(auto.distance - reference.distance) <= SAME_FIXED_POINT_RTOL * abs(reference.distance)
