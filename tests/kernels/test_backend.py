"""kernels.backend: namespaces, conversions, log-sum-exp and the exact linear subproblem."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import ot
import pytest
from scipy.special import logsumexp as scipy_logsumexp

from kernels import backend as bk


def test_names_map_to_array_api_namespaces() -> None:
    import array_api_compat.numpy as xp_numpy

    assert bk.get_backend("numpy") is xp_numpy
    assert bk.backend_name(bk.get_backend("numpy")) == "numpy"
    assert "numpy" in bk.available_backends()
    if not bk.cuda_available():
        assert bk.get_backend("auto") is xp_numpy
        with pytest.raises(ValueError, match="CUDA"):
            bk.get_backend("cupy")
    with pytest.raises(ValueError, match="unknown backend"):
        bk.get_backend("jax")


def test_torch_name_and_arrays() -> None:
    torch = pytest.importorskip("torch")
    xp = bk.get_backend("torch")
    assert bk.backend_name(xp) == "torch"
    t = torch.ones(3, dtype=torch.float64)
    assert bk.backend_name(bk.get_backend(t)) == "torch"
    np.testing.assert_array_equal(bk.to_numpy(t), np.ones(3))


def test_array_gives_its_own_namespace(xp: ModuleType, on: Callable[[np.ndarray], Any]) -> None:
    a = on(np.arange(4.0))
    assert bk.backend_name(bk.get_backend(a)) == bk.backend_name(xp)
    np.testing.assert_array_equal(bk.to_numpy(a), np.arange(4.0))


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # log(0) = -inf rows
def test_logsumexp_matches_scipy(xp: ModuleType, on: Callable[[np.ndarray], Any]) -> None:
    x = np.array([[1000.0, 1000.0, -np.inf], [-5.0, 3.0, 2.0], [-np.inf, -np.inf, -np.inf]])
    got = bk.to_numpy(bk.logsumexp(on(x), axis=1, xp=xp))
    np.testing.assert_allclose(got, scipy_logsumexp(x, axis=1), rtol=1e-14)


def test_exp_normalized_rows_sum_to_weights_without_overflow(
    xp: ModuleType, on: Callable[[np.ndarray], Any]
) -> None:
    # scores of +-1e4 (cost 100 at epsilon 1e-2): the plain exponential overflows/underflows
    rng = np.random.default_rng(0)
    s = rng.uniform(-1e4, 1e4, size=(3, 5, 7))
    w = np.array([[0.2, 0.2, 0.2, 0.4, 0.0]] * 3)
    with np.errstate(divide="ignore"):
        log_w = np.log(w)
    K, phi = bk.exp_normalized(on(s), on(log_w), xp=xp)
    K, phi = bk.to_numpy(K), bk.to_numpy(phi)
    assert np.all(np.isfinite(K)) and np.all(np.isfinite(phi))
    np.testing.assert_allclose(K.sum(axis=2), w, rtol=1e-12, atol=0)
    assert np.all(K[:, 4, :] == 0)


@pytest.mark.parametrize("uniform", [True, False])
def test_linear_ot_batch_is_optimal(uniform: bool) -> None:
    rng = np.random.default_rng(1)
    sizes = [(6, 6), (9, 5), (3, 9), (9, 9)]
    B, N, M = len(sizes), 9, 9
    costs = rng.random((B, N, M))
    a, b = np.zeros((B, N)), np.zeros((B, M))
    for k, (n, m) in enumerate(sizes):
        if uniform and n == m:
            a[k, :n], b[k, :m] = 1.0 / n, 1.0 / m
        else:
            x, y = rng.random(n) + 0.1, rng.random(m) + 0.1
            a[k, :n], b[k, :m] = x / x.sum(), y / y.sum()
    assignment = [
        n == m and bk.is_uniform(a[k, :n]) and bk.is_uniform(b[k, :m]) for k, (n, m) in enumerate(sizes)
    ]
    out = np.full((B, N, M), np.nan)
    bk.solve_linear_ot_batch(costs, a, b, sizes, assignment, out)
    for k, (n, m) in enumerate(sizes):
        plan = out[k]
        np.testing.assert_allclose(plan.sum(1), a[k], atol=1e-12)
        np.testing.assert_allclose(plan.sum(0), b[k], atol=1e-12)
        ref = ot.emd2(a[k, :n], b[k, :m], costs[k, :n, :m])
        assert abs((plan[:n, :m] * costs[k, :n, :m]).sum() - ref) <= 1e-12


def test_linear_ot_zero_weights_like_pot() -> None:
    rng = np.random.default_rng(2)
    cost = rng.random((1, 5, 4))
    a = np.array([[0.25, 0.0, 0.5, 0.25, 0.0]])
    b = np.array([[0.0, 0.5, 0.5, 0.0]])
    out = np.empty_like(cost)
    bk.solve_linear_ot_batch(cost, a, b, [(5, 4)], [False], out)
    np.testing.assert_allclose(out[0], ot.emd(a[0], b[0], cost[0]), atol=1e-15)


def test_cuda_probe_is_cached_and_boolean() -> None:
    assert bk.cuda_available() in (True, False)
    assert bk.cuda_available() is bk.cuda_available()


@pytest.mark.gpu
def test_cupy_auto_backend() -> None:
    if not bk.cuda_available():
        pytest.skip("cupy/CUDA not usable")
    assert bk.backend_name(bk.get_backend("auto")) == "cupy"


@pytest.mark.parametrize(("B", "n"), [(7, 1), (9, 5), (6, 32), (1, 40), (1, 150), (2, 150)])
@pytest.mark.parametrize("solver", ["lapx", "scipy"])
def test_assignments_are_optimal_permutations(B: int, n: int, solver: str) -> None:
    # given: random square costs (n >= 128 also runs the row/column reduction)
    from scipy.optimize import linear_sum_assignment

    if solver == "lapx" and importlib.util.find_spec("lap") is None:
        pytest.skip("lapx not installed")
    costs = np.random.default_rng(n).random((B, n, n))
    # when
    cols = bk.assignments(costs, solver=solver)
    # then: permutations of optimal cost
    assert cols.shape == (B, n)
    for k in range(B):
        assert sorted(cols[k].tolist()) == list(range(n))
        r, c = linear_sum_assignment(costs[k])
        best = costs[k][r, c].sum()
        assert abs(costs[k][np.arange(n), cols[k]].sum() - best) <= 1e-12 * max(1.0, best)


def test_assignment_solver_is_checked() -> None:
    with pytest.raises(ValueError, match="solver must be one of"):
        bk.assignments(np.zeros((1, 2, 2)), solver="hungarian")
