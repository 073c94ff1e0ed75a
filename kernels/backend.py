"""Array backends for the kernels: numpy, torch, cupy, and anything array-API.

Kernels are written once against an array namespace ``xp`` that follows the
Python array API standard (https://data-apis.org/array-api/), obtained through
:mod:`array_api_compat`. This module is the one place that knows about concrete
libraries: choosing a namespace (:func:`get_backend`), moving arrays between
namespaces (:func:`to_numpy`, :func:`asarray_on`), the log-sum-exp reduction and
the exact linear optimal-transport subproblem (:func:`solve_linear_ot_batch`),
which runs on the host in numpy/lapx/POT (scipy without lapx) whatever the backend
of the caller.

Nothing here imports Django, Celery or the platform apps, and nothing does I/O.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device, is_array_api_obj

BACKEND_NAMES = ("numpy", "torch", "cupy")
"""Names accepted by :func:`get_backend` besides ``"auto"``."""

EMD_MAX_ITER = 100_000
"""Network-simplex iteration cap, POT's ``numItermaxEmd`` default in ``ot.optim.cg``."""


LAP_THREADS = 0
"""lapjvh_batch worker threads (0: one per CPU)."""

LAP_REDUCE_MIN = 128
"""Smallest assignment size whose costs are row- and column-reduced before lapjvh: on
CG's costs it shortens the augmentation phase at large ``n``, while at small ``n`` the
two extra passes cost more than they save (measurements: ``docs/benchmarks.md``)."""

ASSIGNMENT_SOLVERS = ("auto", "lapx", "scipy")
"""Implementations :func:`assignments` may use; ``"auto"`` is lapx when installed."""


@functools.cache
def cuda_available() -> bool:
    """Whether CuPy is installed and at least one CUDA device is usable.

    Cached: the answer does not change within a process, and probing CUDA is slow.
    """
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # any driver/runtime failure means "not usable"
        return False


def available_backends() -> list[str]:
    """Names of the backends usable in this process, numpy first."""
    names = ["numpy"]
    if importlib.util.find_spec("torch") is not None:
        names.append("torch")
    if cuda_available():
        names.append("cupy")
    return names


def get_backend(name_or_array: Any = "auto") -> ModuleType:
    """Return the array-API namespace for a backend name or for an array.

    Parameters
    ----------
    name_or_array : str or array
        ``"numpy"``, ``"torch"``, ``"cupy"`` or ``"auto"`` (CuPy when a CUDA
        device is usable, else numpy); or an array, in which case its own
        namespace is returned (numpy, torch, cupy, ``array_api_strict``, ...).

    Returns
    -------
    module
        An array-API-compatible namespace (``array_api_compat.numpy``,
        ``array_api_compat.torch``, ``array_api_compat.cupy`` or the array's own
        namespace when it is natively compliant).

    Raises
    ------
    ValueError
        For an unknown name, or ``"cupy"`` without a usable CUDA device.
    """
    if not isinstance(name_or_array, str):
        return array_namespace(name_or_array)
    name = name_or_array.lower()
    if name == "auto":
        name = "cupy" if cuda_available() else "numpy"
    if name == "numpy":
        import array_api_compat.numpy as xp_numpy

        return xp_numpy
    if name == "torch":
        import array_api_compat.torch as xp_torch

        return xp_torch
    if name == "cupy":
        if not cuda_available():
            raise ValueError("backend 'cupy' needs CuPy and a usable CUDA device")
        import array_api_compat.cupy as xp_cupy

        return xp_cupy
    raise ValueError(f"unknown backend {name_or_array!r}; expected one of auto, {BACKEND_NAMES}")


def backend_name(xp: ModuleType) -> str:
    """Short name of a namespace: ``numpy``, ``torch``, ``cupy`` or its module name."""
    full = xp.__name__
    for name in BACKEND_NAMES:
        if full == name or full.endswith("." + name):
            return name
    return full


def default_device(xp: ModuleType) -> Any:
    """Device new arrays go to when no input array fixes it (CUDA for torch if present)."""
    if backend_name(xp) == "torch":
        import torch

        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    return None


def to_numpy(x: Any) -> np.ndarray:
    """Copy (or view) any supported array as a host numpy array."""
    if isinstance(x, np.ndarray):
        return x
    module = type(x).__module__
    if module.startswith("torch"):
        return x.detach().cpu().numpy()
    if module.startswith("cupy"):
        return x.get()
    if is_array_api_obj(x):
        try:
            return np.from_dlpack(x)
        except Exception:  # namespaces without DLPack export
            return np.asarray(x)
    return np.asarray(x)


def asarray_on(x: Any, xp: ModuleType, *, dtype: Any = None, device: Any = None) -> Any:
    """Convert ``x`` (array of any namespace, or nested sequence) into namespace ``xp``.

    Crosses namespaces through host numpy, the only boundary every backend shares.
    """
    if is_array_api_obj(x) and array_namespace(x) is not xp:
        if backend_name(array_namespace(x)) != backend_name(xp):
            x = to_numpy(x)
    if backend_name(xp) == "cupy" and isinstance(x, np.ndarray):
        import cupy

        with cupy.cuda.Device(device.id if device is not None else None):
            return cupy.asarray(x, dtype=dtype)
    if dtype is None and device is None:
        return xp.asarray(x)
    if device is None:
        return xp.asarray(x, dtype=dtype)
    return xp.asarray(x, dtype=dtype, device=device)


def array_device(x: Any) -> Any:
    """The device an array lives on (``None`` semantics delegated to array_api_compat)."""
    return device(x)


def logsumexp(x: Any, axis: int, *, xp: ModuleType | None = None) -> Any:
    r"""Stable :math:`\log \sum \exp` along ``axis`` (reduced axis removed).

    Uses the library's fused implementation where there is one (torch), else the
    max-shift formula :math:`m + \log \sum \exp(x - m)` with :math:`m = \max x`;
    rows that are entirely :math:`-\infty` give :math:`-\infty`, not NaN.
    """
    xp = xp or array_namespace(x)
    if backend_name(xp) == "torch":
        import torch

        return torch.logsumexp(x, dim=axis)
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    return xp.squeeze(out, axis=axis)


def exp_normalized(s: Any, log_w: Any, *, xp: ModuleType) -> tuple[Any, Any]:
    r"""Row-normalised exponential: the log-domain half step of Sinkhorn.

    For a batch of score matrices :math:`S` of shape ``(B, n, m)`` and log row
    weights :math:`\log w` of shape ``(B, n)`` return :math:`K` and :math:`\phi` with

    .. math::
        \phi_i = \log w_i - \log \sum_j e^{S_{ij}}, \qquad K_{ij} = e^{S_{ij} + \phi_i},

    so that every row of ``K`` sums to :math:`w_i` and no entry exceeds it: the
    result never overflows whatever the scale of ``S``. One exponential pass.
    Rows whose weight is zero (``log_w = -inf``) come out as zero rows with
    :math:`\phi_i = 0`.
    """
    m = xp.max(s, axis=-1, keepdims=True)
    # a row of -inf scores (padding) would give exp(-inf - -inf) = NaN: shift it by 0
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    e = xp.exp(s - m)
    row = xp.sum(e, axis=-1, keepdims=True)
    live = log_w[..., None] > -xp.inf
    safe_log_w = xp.where(live, log_w[..., None], xp.zeros_like(m))
    safe_row = xp.where(live, row, xp.ones_like(row))  # padding rows sum to 0
    phi = safe_log_w - m - xp.log(safe_row)
    scale = xp.where(live, xp.exp(safe_log_w) / safe_row, xp.zeros_like(row))
    phi = xp.where(live, phi, xp.zeros_like(phi))
    return e * scale, phi[..., 0]


def emd_dense(a: np.ndarray, b: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """POT's ``ot.emd(a, b, cost)`` without its backend and argument checks.

    Same preprocessing as POT 0.9.7: ``b`` rescaled to the mass of ``a``, rows and
    columns of zero weight removed before the network simplex and put back after.
    """
    from ot.lp.emd_wrap import emd_c

    b = b * a.sum() / b.sum()  # POT's association order: same bits, same ties
    rows = a != 0
    cols = b != 0
    if rows.all() and cols.all():
        plan, *_ = emd_c(a, b, np.ascontiguousarray(cost), EMD_MAX_ITER, 1, None, None)
        return plan
    sub = np.ascontiguousarray(cost[np.ix_(rows, cols)])
    plan_sub, *_ = emd_c(a[rows], b[cols], sub, EMD_MAX_ITER, 1, None, None)
    plan = np.zeros(cost.shape, dtype=np.float64)
    plan[np.ix_(rows, cols)] = plan_sub
    return plan


def is_uniform(w: np.ndarray) -> bool:
    """Whether all weights are equal (and positive): the assignment-problem case."""
    return bool(w.size > 0 and w[0] > 0 and np.all(w == w[0]))


def assignments(
    costs: np.ndarray, threads: int | None = None, *, overwrite: bool = False, solver: str = "auto"
) -> np.ndarray:
    """Optimal permutations of a stack of square cost matrices.

    Parameters
    ----------
    costs : ndarray, shape (B, n, n)
    threads : int, optional
        lapjvh_batch workers (default :data:`LAP_THREADS`, 0: one per CPU).
    overwrite : bool
        The costs (float64, C-contiguous) may be modified in place.
    solver : {"auto", "lapx", "scipy"}
        ``"lapx"``: one call of lapx's ``lapjvh_batch`` (Jonker-Volgenant, compiled,
        threaded over the batch; Jonker & Volgenant 1987); ``"scipy"``: scipy's
        ``linear_sum_assignment`` per problem; ``"auto"``: lapx when it is installed.
        Both are exact; on ties they may pick different optimal permutations.

    Returns
    -------
    ndarray, shape (B, n), int64
        Row ``i`` of problem ``k`` is matched to column ``out[k, i]``.

    Raises
    ------
    ValueError
        For an unknown ``solver``, or ``"lapx"`` when lapx is not installed.
    """
    if solver not in ASSIGNMENT_SOLVERS:
        raise ValueError(f"solver must be one of {ASSIGNMENT_SOLVERS}; got {solver!r}")
    lap = None if solver == "scipy" else _lap()
    if solver == "lapx" and lap is None:
        raise ValueError("solver='lapx' needs the lapx package (with lapjvh_batch)")
    B, n = costs.shape[0], costs.shape[1]
    if B == 0 or n == 0:
        return np.zeros((B, n), dtype=np.int64)
    costs = np.ascontiguousarray(costs, dtype=np.float64)
    if n >= LAP_REDUCE_MIN:
        # row then column reduction: the same optimal permutations (each one pays
        # every row's and column's shift once), and JV's augmentation phase shortens
        if overwrite:
            costs -= costs.min(axis=2, keepdims=True)
        else:
            costs = costs - costs.min(axis=2, keepdims=True)
        costs -= costs.min(axis=1, keepdims=True)
    if lap is not None:
        if n == 1:
            return np.zeros((B, 1), dtype=np.int64)
        if B == 1:
            # one problem: lapjvr (the other completion strategy) is faster on CG's
            # reduced costs at large n; no threads to use either way
            solve = lap.lapjvr if n >= LAP_REDUCE_MIN else lap.lapjvh
            _, cols = solve(costs[0], return_cost=False)
            return np.asarray(cols, dtype=np.int64)[None, :]
        workers = LAP_THREADS if threads is None else threads
        _, cols = lap.lapjvh_batch(costs, return_cost=False, n_threads=workers)
        return np.stack(cols).astype(np.int64, copy=False)
    from scipy.optimize import linear_sum_assignment

    return np.stack([linear_sum_assignment(c)[1] for c in costs]).astype(np.int64, copy=False)


@functools.cache
def _lap() -> ModuleType | None:
    """lapx's ``lap`` module, or ``None`` when it is not installed."""
    if importlib.util.find_spec("lap") is None:
        return None
    import lap

    return lap if hasattr(lap, "lapjvh_batch") else None


def solve_linear_ot_batch(
    costs: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    sizes: Sequence[tuple[int, int]],
    assignment: Sequence[bool],
    out: np.ndarray,
) -> None:
    r"""Exact linear OT for each problem of a padded batch, on the host.

    Solves, for every ``k``, :math:`\min_{T \in \Pi(a_k, b_k)} \langle C_k, T\rangle`
    restricted to the leading ``sizes[k]`` block, and writes an optimal *vertex*
    of the transport polytope into ``out[k]`` (zeros elsewhere).

    Where ``assignment[k]`` is true (uniform weights, ``n == m``) the vertices
    are the permutation matrices scaled by :math:`1/n` and the problem is a
    linear assignment, solved by :func:`assignments` (all problems of one size in
    one call); elsewhere POT's network simplex (``ot.lp.emd_c``, Bonneel et al.
    2011). Both are exact; with ties they may pick different optimal vertices.

    Parameters
    ----------
    costs : ndarray, shape (B, N, M), float64
    a : ndarray, shape (B, N), float64
    b : ndarray, shape (B, M), float64
    sizes : sequence of (n_k, m_k)
    assignment : sequence of bool
    out : ndarray, shape (B, N, M), float64
        Overwritten with the plans.
    """
    out[...] = 0.0
    groups: dict[int, list[int]] = {}
    for k, (n, m) in enumerate(sizes):
        if assignment[k]:
            groups.setdefault(n, []).append(k)
        else:
            out[k, :n, :m] = emd_dense(a[k, :n], b[k, :m], costs[k, :n, :m])
    for n, members in groups.items():
        idx = np.asarray(members)
        cols = assignments(costs[idx, :n, :n])
        rows = np.arange(n)
        out[idx[:, None], rows[None, :], cols] = a[idx, :n]
