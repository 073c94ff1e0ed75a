"""Entropic FGW (``method="entropic"``) against POT's ``entropic_fused_gromov_wasserstein2``
(PGD), on every installed backend and through each solver."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import ot
import pytest

from kernels import backend as bk
from kernels.fgw import DEFAULT_MAX_ITER, fgw, fgw_batch
from tests.kernels.conftest import random_problem
from tests.kernels.fgw.conftest import ENTROPIC_RTOL, SAME_RTOL, numpy_plan, pot_entropic, rel


@pytest.mark.parametrize("solver", ["auto", "reference"])
def test_entropic_matches_pot_where_pot_converges(solver: str) -> None:
    rng = np.random.default_rng(5)
    compared = 0
    for n, m, eps in [(10, 10, 1e-2), (16, 12, 1e-2), (20, 20, 5e-2), (14, 18, 1e-1), (24, 24, 1e-2)]:
        prob = random_problem(rng, n, m, uniform=n % 2 == 0)
        ref, pot_converged = pot_entropic(prob, eps)
        ours = fgw(*prob, method="entropic", epsilon=eps, solver=solver)
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


def test_batched_entropic_padding_rows_stay_finite_beside_large_costs() -> None:
    # given: a one-node graph padded to the rows of a pair with costs in the tens, whose
    # kernel underflows and sends the whole batch to the log-domain kernel (padding
    # rows of -inf scores gave exp(-inf - -inf) = NaN there)
    rng = np.random.default_rng(31)
    small = random_problem(rng, 1, 9)
    M, C1, C2, p, q = random_problem(rng, 8, 11)
    large = (M * 50.0, C1 * 50.0, C2, p, q)
    # when
    together = fgw_batch([small, large], method="entropic", epsilon=0.1, solver="reference")
    alone = [fgw(*prob, method="entropic", epsilon=0.1, solver="reference") for prob in (small, large)]
    # then
    for a, b in zip(together, alone, strict=True):
        assert np.isfinite(a.distance) and a.converged == b.converged
        assert rel(a.distance, b.distance) <= 1e-6
