"""Fixtures for the kernel tests: backends and random attributed-graph problems."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from scipy.sparse.csgraph import shortest_path

from kernels import backend as bk

Problem = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _backend_params() -> list[Any]:
    params: list[Any] = ["numpy"]
    if importlib.util.find_spec("torch") is not None:
        params.append("torch")
    if importlib.util.find_spec("array_api_strict") is not None:
        params.append("array_api_strict")
    params.append(pytest.param("cupy", marks=pytest.mark.gpu))
    return params


@pytest.fixture(params=_backend_params())
def xp(request: pytest.FixtureRequest) -> ModuleType:
    """Every installed array namespace; cupy only with a usable CUDA device."""
    name = request.param
    if name == "cupy" and not bk.cuda_available():
        pytest.skip("cupy/CUDA not usable")
    if name == "array_api_strict":
        import array_api_strict

        return array_api_strict
    return bk.get_backend(name)


@pytest.fixture
def on(xp: ModuleType) -> Callable[[np.ndarray], Any]:
    """Move a float64 numpy array into the fixture's namespace."""

    def convert(a: np.ndarray) -> Any:
        if a is None:
            return None
        return bk.asarray_on(np.asarray(a, dtype=np.float64), xp, device=bk.default_device(xp))

    return convert


def random_graph(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    """Connected random graph: ``"adj"`` 0/1 adjacency or ``"sp"`` shortest paths in [0, 1]."""
    A = np.triu((rng.random((n, n)) < min(1.0, 3.0 / max(n - 1, 1))).astype(float), 1)
    idx = np.arange(n - 1)
    A[idx, idx + 1] = 1.0  # a path through all nodes keeps it connected
    A = A + A.T
    if kind == "adj":
        return A
    D = shortest_path(A, unweighted=True)
    return D / max(D.max(), 1.0)


def random_problem(
    rng: np.random.Generator,
    n: int,
    m: int,
    *,
    kind: str = "sp",
    uniform: bool = True,
    dim: int = 3,
) -> Problem:
    """``(M, C1, C2, p, q)``: squared feature distances scaled to [0, 1], two graphs, weights."""
    C1, C2 = random_graph(rng, n, kind), random_graph(rng, m, kind)
    F1, F2 = rng.normal(size=(n, dim)), rng.normal(size=(m, dim))
    M = ((F1[:, None, :] - F2[None, :, :]) ** 2).sum(-1)
    M /= max(M.max(), 1e-12)
    if uniform:
        p, q = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
    else:
        p, q = rng.random(n) + 0.1, rng.random(m) + 0.1
        p, q = p / p.sum(), q / q.sum()
    return M, C1, C2, p, q


@pytest.fixture
def make_problem() -> Callable[..., Problem]:
    return random_problem
