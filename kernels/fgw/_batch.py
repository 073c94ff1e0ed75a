"""From lists of problems to arrays and back, for every solver of :mod:`kernels.fgw`.

The reference solvers take a padded :class:`Batch` in one array namespace (built by
:func:`make_batch`, cut into chunks by :func:`chunks`); the compiled ones take stacks
of equal-shape float64 pairs (grouped by :func:`shape_groups`, stacked by
:func:`stack`) and give back :class:`PairResults`, whose pairs they could not solve
carry a status other than :data:`OK`. Both end as one :class:`FGWResult` per problem.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import is_array_api_obj

from kernels import backend as bk
from kernels.fgw._validation import check_shapes, check_weights, is_symmetric_stack

MAX_BATCH_ENTRIES = {"exact": 1 << 17, "entropic": 1 << 22, "gpu": 1 << 22}
"""Largest padded chunk of the reference solvers, in matrix entries ``B * N * M``;
larger batches are cut into chunks of similar sizes (the ``max_batch_entries``
option of :func:`kernels.fgw.fgw_batch` overrides it). Exact on the host: 128K
entries (1 MiB per float64 array) keep a chunk's working arrays in a core's L2
cache. Entropic on the host: a chunk ends with a tail of slow pairs whose cost is
per-iteration overhead, paid once per chunk, so chunks stay large. On a GPU large
batches are the point. 4M entries are 32 MiB per float64 array, of which the solvers
hold about ten."""

WORKSPACE_MAX_ENTRIES = 1 << 18
"""Largest float64 scratch array (entries, 2 MiB) that :func:`scratch` keeps between
calls. Fresh multi-megabyte temporaries are page-faulted in on first touch, which
for small pairs costs as much as the arithmetic on them; the stacked inputs of the
compiled paths (``M``, ``C1``, ``C2``) therefore live in per-thread buffers reused
across calls: at most about 6 MiB per thread that has run a large batch."""

OK, NOT_FINITE, NOT_SYMMETRIC = 0, 1, 2
"""Per-pair status of the compiled solvers (:attr:`PairResults.status`)."""

STATUS_REASONS = {
    NOT_FINITE: "an input holds NaN or infinity, or the objective overflows float64",
    NOT_SYMMETRIC: "a structure matrix is not exactly symmetric",
}
"""Why a compiled solver handed a pair back, by status."""


@dataclass(frozen=True, slots=True)
class FGWResult:
    """Result of one FGW problem.

    Attributes
    ----------
    distance : float
        FGW objective at the returned plan (entropy term excluded).
    plan : array, shape (n, m), or None
        The coupling, in the backend used; ``None`` unless ``return_plan``.
    n_iter : int
        Outer iterations run (linear subproblems for ``exact``, Sinkhorn
        projections for ``entropic``).
    converged : bool
        Whether the stopping criterion was met within ``max_iter`` (for
        ``entropic`` also: the last projection met its marginal tolerance).
    """

    distance: float
    plan: Any
    n_iter: int
    converged: bool


@dataclass
class PairResults:
    """Per-pair outcomes of a compiled solver for a stack of ``B`` pairs.

    Attributes
    ----------
    distance : ndarray, shape (B,), float64
        FGW objective at the returned plan (meaningful where ``status == OK``).
    n_iter : ndarray, shape (B,), int64
        Outer iterations run.
    converged : ndarray, shape (B,), bool
        Whether the stopping criterion was met.
    status : ndarray, shape (B,), int64
        :data:`OK`; :data:`NOT_FINITE` (an input holds NaN or infinity, the objective
        overflowed, or, as a safety net, an assignment found no augmenting path) or
        :data:`NOT_SYMMETRIC` (a structure is not exactly symmetric): pairs to be
        solved another way.
    plans : ndarray, shape (B, n, m), float64, or None
        The couplings, when asked for.
    """

    distance: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    status: np.ndarray
    plans: np.ndarray | None

    @classmethod
    def empty(cls, B: int, n: int, m: int, *, with_plans: bool) -> PairResults:
        """Zeroed outcomes for ``B`` pairs; ``plans`` has ``B`` rows only ``with_plans``
        (the compiled code tests ``plans.shape[0]`` to know whether to fill them)."""
        return cls(
            distance=np.zeros(B),
            n_iter=np.zeros(B, dtype=np.int64),
            converged=np.zeros(B, dtype=np.bool_),
            status=np.zeros(B, dtype=np.int64),
            plans=np.zeros((B if with_plans else 0, n, m)),
        )


# --------------------------------------------------------------------------- namespace and dtype


def resolve(arrays: Sequence[Any], backend: str | ModuleType) -> tuple[ModuleType, Any]:
    """Namespace and device for a call.

    ``"auto"`` keeps non-numpy input arrays where they are (torch, cupy,
    array_api_strict, ...); host numpy or lists go to CuPy when a CUDA device is
    usable, else stay in numpy.
    """
    if not isinstance(backend, str):
        return backend, None
    if backend == "auto":
        native = [
            a
            for a in arrays
            if type(a) is not np.ndarray and is_array_api_obj(a) and not isinstance(a, np.ndarray)
        ]
        if native:
            xp = bk.get_backend(native[0])
            return xp, bk.array_device(native[0])
    xp = bk.get_backend(backend)
    return xp, bk.default_device(xp)


def result_dtype(arrays: Sequence[Any]) -> str:
    """``"float32"`` when every floating input is float32, else ``"float64"``."""
    seen = False
    for a in arrays:
        if a is None:
            continue
        dtype = getattr(a, "dtype", None)
        if dtype is None:
            return "float64"
        if isinstance(dtype, np.dtype):
            if dtype != np.float32:
                return "float64"
        elif str(dtype).rsplit(".", 1)[-1] != "float32":
            return "float64"
        seen = True
    return "float32" if seen else "float64"


def on_gpu(xp: ModuleType, device: Any) -> bool:
    return bk.backend_name(xp) == "cupy" or "cuda" in str(device)


def to_host(x: Any) -> np.ndarray:
    """``x`` as a float64 numpy array (itself when it already is one)."""
    if type(x) is np.ndarray and x.dtype == np.float64:
        return x
    return np.asarray(bk.to_numpy(x), dtype=np.float64)


def host_problems(problems: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Every problem's arrays as float64 numpy (``None`` weights kept)."""
    return [tuple(None if a is None else to_host(a) for a in prob) for prob in problems]


def n_nodes(C: Any) -> int:
    shape = getattr(C, "shape", None)
    return int(shape[0]) if shape is not None else len(C)


def or_uniform(weights: np.ndarray | None, n: int) -> np.ndarray:
    return np.full(n, 1.0 / n) if weights is None else weights


# --------------------------------------------------------------------------- padded batches (reference)


@dataclass(slots=True)
class Batch:
    """Padded batch of problems in one namespace.

    Every pair is padded to the largest ``N`` and ``M`` of the batch with zero weights
    and zero costs: zero-weight rows and columns carry no mass, so the padding
    changes no value.

    Attributes
    ----------
    xp : namespace
    M, C1, C2 : arrays, shapes (B, N, M), (B, N, N), (B, M, M)
        In ``xp``, of the call's dtype.
    p, q : arrays, shapes (B, N), (B, M)
    p_host, q_host : ndarray, float64
        The weights on the host (the linear subproblems are solved there).
    sizes : list of (n, m)
        Each pair's own shape.
    symmetric : bool
        Whether every structure passes POT's symmetry test.
    """

    xp: ModuleType
    M: Any
    C1: Any
    C2: Any
    p: Any
    q: Any
    p_host: np.ndarray
    q_host: np.ndarray
    sizes: list[tuple[int, int]]
    symmetric: bool


def pad(host: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Stack arrays, each zero-padded to ``shape``."""
    if all(a.shape == shape for a in host):
        return np.stack(host)
    out = np.zeros((len(host), *shape), dtype=np.float64)
    for k, a in enumerate(host):
        out[(k, *(slice(0, s) for s in a.shape))] = a
    return out


def make_batch(
    problems: Sequence[tuple[Any, Any, Any, Any, Any]], xp: ModuleType, dtype: str, device: Any
) -> Batch:
    """Validate ``problems`` (shapes, weights; ``None`` weights: uniform) and pad them
    into one :class:`Batch` of ``dtype`` on ``device``."""
    Ms, C1s, C2s, ps, qs = [], [], [], [], []
    for M, C1, C2, p, q in problems:
        M, C1, C2 = to_host(M), to_host(C1), to_host(C2)
        n, m = len(C1), len(C2)
        p = np.full(n, 1.0 / n) if p is None else to_host(p)
        q = np.full(m, 1.0 / m) if q is None else to_host(q)
        check_shapes(M, C1, C2, p, q)
        Ms.append(M), C1s.append(C1), C2s.append(C2), ps.append(p), qs.append(q)
    N = max(len(p) for p in ps)
    Mx = max(len(q) for q in qs)
    host = {
        "M": pad(Ms, (N, Mx)),
        "C1": pad(C1s, (N, N)),
        "C2": pad(C2s, (Mx, Mx)),
        "p": pad(ps, (N,)),
        "q": pad(qs, (Mx,)),
    }
    check_weights(host["p"], host["q"])
    symmetric = is_symmetric_stack(host["C1"]) and is_symmetric_stack(host["C2"])
    dev = {k: bk.asarray_on(v.astype(dtype, copy=False), xp, device=device) for k, v in host.items()}
    return Batch(
        xp=xp,
        p_host=host["p"],
        q_host=host["q"],
        sizes=[(len(p), len(q)) for p, q in zip(ps, qs, strict=True)],
        symmetric=symmetric,
        **dev,
    )


def chunks(sizes: Sequence[tuple[int, int]], max_entries: int) -> list[list[int]]:
    """Indices grouped into batches of similar shapes of at most ``max_entries``
    padded entries (a pair larger than that on its own gets a chunk of its own)."""
    order = sorted(range(len(sizes)), key=lambda k: (sizes[k][0] * sizes[k][1], sizes[k]))
    out: list[list[int]] = []
    current: list[int] = []
    n_max = m_max = 0
    for k in order:
        n, m = sizes[k]
        n2, m2 = max(n_max, n), max(m_max, m)
        if current and (len(current) + 1) * max(n2, m2) ** 2 > max_entries:
            out.append(current)
            current, n2, m2 = [], n, m
        current.append(k)
        n_max, m_max = n2, m2
    if current:
        out.append(current)
    return out


def store_finished(
    results: list[FGWResult | None],
    b: Batch,
    active: np.ndarray,
    rows: Sequence[int] | np.ndarray,
    distances: Any,
    plans: Any,
    it: int,
    converged: np.ndarray,
    *,
    positions: Sequence[int] | np.ndarray | None = None,
) -> None:
    """Record the pairs at working-set ``rows`` as finished; plans lose their padding.

    ``active[row]`` is a row's index in the batch; ``distances`` and ``plans`` hold
    row ``i``'s values at ``positions[i]`` (default: at the row itself, for arrays over
    the whole working set).
    """
    for pos, row in zip(rows if positions is None else positions, rows, strict=True):
        k = int(active[row])
        n, m = b.sizes[k]
        results[k] = FGWResult(
            distance=float(distances[pos]),
            plan=plans[pos, :n, :m] if plans is not None else None,
            n_iter=it,
            converged=bool(converged[row]),
        )


# --------------------------------------------------------------------------- equal-shape stacks (compiled)


def shape_groups(host: list[tuple[Any, ...]], rest: list[int]) -> dict[tuple[int, int], list[int]]:
    """The problems of ``rest`` with consistent, non-empty shapes, grouped by ``(n, m)``
    (the others are left to the reference solvers, whose checks say what is wrong)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for k in rest:
        M, C1, C2, p, q = host[k]
        if M is None or C1 is None or C2 is None or M.ndim != 2 or C1.ndim != 2 or C2.ndim != 2:
            continue
        n, m = M.shape
        if n == 0 or m == 0 or C1.shape != (n, n) or C2.shape != (m, m):
            continue
        if (p is not None and p.shape != (n,)) or (q is not None and q.shape != (m,)):
            continue
        groups.setdefault((n, m), []).append(k)
    return groups


_WORKSPACE = threading.local()


def scratch(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 array of ``shape`` backed by this thread's reusable buffer ``name``
    (contents undefined); a plain new array when it exceeds :data:`WORKSPACE_MAX_ENTRIES`."""
    size = int(np.prod(shape))
    if size > WORKSPACE_MAX_ENTRIES:
        return np.empty(shape)
    buffers = getattr(_WORKSPACE, "buffers", None)
    if buffers is None:
        buffers = _WORKSPACE.buffers = {}
    buf = buffers.get(name)
    if buf is None or buf.size < size:
        buf = buffers[name] = np.empty(max(size, 1))
    return buf[:size].reshape(shape)


def stack(arrays: list[np.ndarray], name: str | None) -> np.ndarray:
    """Arrays of one shape as a float64 stack, in scratch buffer ``name`` (a new array
    when ``None``); a single C-contiguous float64 array as a view (no copy: an RD
    curve's levels are one pair each, all sharing the graph's structure)."""
    first = arrays[0]
    if len(arrays) == 1 and first.dtype == np.float64 and first.flags.c_contiguous:
        return first[None]
    if name is None:
        return np.stack(arrays).astype(np.float64, copy=False)
    return np.stack(arrays, out=scratch(name, (len(arrays), *first.shape)))


def store_compiled(
    results: list[FGWResult | None], handed_back: dict[int, str], sel: list[int], out: PairResults
) -> None:
    """Outcomes of a compiled solver for the problems ``sel`` into ``results``; those it
    could not solve go into ``handed_back``, with the reason."""
    # Python scalars from tolist(): one conversion per array, not one per value
    fields = (out.status.tolist(), out.distance.tolist(), out.n_iter.tolist(), out.converged.tolist())
    for row, (k, status, distance, n_iter, converged) in enumerate(zip(sel, *fields, strict=True)):
        if status != OK:
            handed_back[k] = STATUS_REASONS[status]
            continue
        plan = out.plans[row] if out.plans is not None else None
        results[k] = FGWResult(distance=distance, plan=plan, n_iter=n_iter, converged=converged)
