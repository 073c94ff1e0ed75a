r"""Fused Gromov-Wasserstein (FGW) distances with the square loss, single and batched.

For two attributed graphs with structure matrices :math:`C_1` (``n x n``),
:math:`C_2` (``m x m``), node weights :math:`p, q` and a feature cost
:math:`M` (``n x m``), the FGW objective of a coupling :math:`T \in \Pi(p, q)` is

.. math::
    E(T) = (1 - \alpha) \langle M, T \rangle
           + \alpha \sum_{i,j,k,l} (C_{1,ik} - C_{2,jl})^2 \, T_{ij} T_{kl}

(Vayer et al. 2019). The quadratic term is evaluated without the 4-way tensor
through the decomposition of Peyré et al. (2016), Prop. 1:

.. math::
    \sum_{ijkl} (C_{1,ik} - C_{2,jl})^2 T_{ij}T_{kl} = \langle c_{C_1,C_2} - 2\, C_1 T C_2^\top, T\rangle,
    \qquad c_{C_1,C_2} = (C_1^{\odot 2} p)\,1^\top + 1\,(C_2^{\odot 2} q)^\top,

so one evaluation costs two matrix products (the "tensor product" phase).

Two solvers, both the same problems and algorithms as POT 0.9.7:

``method="exact"``
    ``ot.gromov.fused_gromov_wasserstein2(..., loss_fun="square_loss")``: conditional
    gradient (Frank-Wolfe) from :math:`p q^\top`, an exact linear OT subproblem per
    iteration and the closed-form line search, stopping when the objective's
    relative or absolute change falls under ``tol``. Differences from POT are only
    in how the same numbers are obtained: the tensor product is kept up to date
    affinely (:math:`L(G + t\,\Delta) = L(G) + t\,L(\Delta)`, one tensor product per
    iteration instead of POT's two), the subproblem is a linear assignment when the
    weights are uniform and ``n == m`` (lapx's compiled Jonker-Volgenant, all pairs of
    an iteration in one call; float64 numpy pairs with symmetric structures run the
    whole CG compiled, see :mod:`kernels.assignment`), and many pairs run as one
    batch. Where the
    feature cost cannot break ties between candidate matches (``alpha == 1``, or rows
    and columns of ``M`` repeating values in at least ``TIE_FRACTION`` of its
    entries, as with categorical labels) the
    subproblems have many optimal vertices and the one picked decides the local
    minimum reached; those pairs run POT's own sequence of floating-point operations
    and network simplex on the host, so they land exactly where POT does.
``method="entropic"``
    ``ot.gromov.entropic_fused_gromov_wasserstein2(..., solver="PGD")``: projected
    (mirror) gradient with Sinkhorn projections (Peyré et al. 2016),

    .. math::
        T_{k+1} = \arg\min_{T\in\Pi(p,q)} \langle (1-\alpha)M
        + 2\alpha\,(c_{C_1,C_2} - 2\,C_1 T_k C_2^\top), T\rangle - \varepsilon H(T),

    iterated to a fixed point. The returned value is :math:`E(T)` without the
    entropy. The Sinkhorn projections use scaling with absorption of large scalings
    into log-domain potentials (Schmitzer 2019), warm-started across outer
    iterations, so they neither underflow at small :math:`\varepsilon` nor in
    float32; both loops are bounded and non-convergence is reported, never waited out.

References
----------
Vayer, Chapel, Flamary, Tavenard, Courty. "Optimal Transport for structured data with
application on graphs", ICML 2019.
Peyré, Cuturi, Solomon. "Gromov-Wasserstein averaging of kernel and distance
matrices", ICML 2016.
Schmitzer. "Stabilized sparse scaling algorithms for entropy regularized transport
problems", SIAM J. Sci. Comput. 2019.
Thibault, Chizat, Dossal, Papadakis. "Overrelaxed Sinkhorn-Knopp algorithm for
regularized optimal transport", 2017.
Walker, Ni. "Anderson acceleration for fixed-point iterations", SIAM J. Numer. Anal. 2011.
Flamary et al. "POT: Python Optimal Transport", JMLR 2021 (``ot.gromov``, ``ot.optim.cg``).
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

METHODS = ("exact", "entropic")

DEFAULT_MAX_ITER = {"exact": 10_000, "entropic": 1_000}
"""Outer-iteration caps, POT's defaults (``max_iter=1e4`` for CG, ``1000`` for PGD)."""

SYMMETRY_ATOL = 1e-10
SYMMETRY_RTOL = 1e-5
"""POT's symmetry test, ``np.allclose(C, C.T, atol=1e-10)`` (default ``rtol``)."""

MASS_ATOL = 1e-6
"""Largest accepted difference between the total masses of ``p`` and ``q``
(POT's ``emd`` asserts the same to 6 decimals)."""

SINKHORN_TOL = 1e-9
r"""Inner Sinkhorn stop: :math:`\ell_1` error of the plan's row marginals. POT stops its
inner Sinkhorn at a 2-norm column error of 1e-9 (but after at most 1000 iterations); a
marginal error of :math:`\delta` moves the FGW value by :math:`O(\delta)`, so this
keeps values within 1e-8 of an exact projection."""

SINKHORN_MAX_ITER = 1_000
"""Inner Sinkhorn cap per projection (POT's ``numItermax``). Warm-started projections
need a few tens of iterations; the first one from cold potentials a few hundred."""

SINKHORN_FAILURES = 5
"""A pair stops, reported as not converged, once this many of its projections hit the
cap: at small epsilon some costs make Sinkhorn itself crawl (marginal errors still
1e-5 after 20000 iterations), and POT then iterates on plans that miss their
marginals for up to ``max_iter * 1000`` iterations. This bounds the work per pair at
about ``SINKHORN_FAILURES * SINKHORN_MAX_ITER`` slow iterations plus the fast ones."""

SINKHORN_INEXACT = 0.1
"""Inner tolerance as a fraction of the last outer plan change: early projections,
whose plans are about to move anyway, stop sooner. The first projection and those
before a stop are held to the floor tolerance."""

ANDERSON_DEPTH = 3
ANDERSON_START = 1e-4
ANDERSON_RESTART = 10.0
ANDERSON_REG = 1e-10
"""Anderson acceleration of the outer fixed-point iteration: history of 3 residuals,
switched on per pair once the plan change is below 1e-4 (inside the basin of the
fixed point POT's plain iteration reaches), skipped for a step whose change grew
tenfold; the least-squares Gram matrix gets a 1e-10 relative ridge. Halves the outer
iterations on the slow-contracting pairs; switched off when the namespace has no
``linalg``."""

SINKHORN_RETIRE_FRACTION = 0.25
"""Pairs whose projection has converged leave the working set once they are at least
this fraction of it: a retirement copies the working arrays once, so it pays only when
it shrinks them enough."""

SINKHORN_CHECK_EVERY = 5
"""Sinkhorn iterations between convergence checks: each check is a host sync (costly on
a GPU) and a reduction, the cap above is rounded up to a multiple of it."""

FLOAT32_TOL_FLOOR = 1e-6
"""Lowest tolerances used in float32 (outer plan change, inner marginal error): a plan
of total mass 1 carries rounding of about 1e-7 per reduction in float32, so the float64
defaults of 1e-9 would never be met and every float32 call would report non-convergence."""

ABSORB_LOG_THRESHOLD = {"float64": 200.0, "float32": 20.0}
r"""Scalings :math:`u, v` are folded into the potentials once :math:`|\log u|` or
:math:`|\log v|` exceeds this (:math:`e^{200} \approx 10^{87}` of float64's
:math:`10^{308}`, :math:`e^{20} \approx 5 \cdot 10^{8}` of float32's :math:`10^{38}`): a
larger value absorbs less often (each absorption is one exponential pass over the
batch), a smaller one keeps more range in reserve."""

MAX_BATCH_ENTRIES = {"exact": 1 << 17, "entropic": 1 << 22, "gpu": 1 << 22}
"""Largest padded batch, in matrix entries ``B * N * M``; larger batches are split into
chunks of similar sizes. Exact on the host: 128K entries (1 MiB per float64 array)
keeps a chunk's working arrays in a core's L2 cache, and 256 pairs of 32 nodes run
about 20 % faster as two chunks than as one. Entropic on the host: a chunk ends with a
tail of slow pairs whose cost is per-iteration overhead, paid once per chunk, so
chunks stay large. On a GPU large batches are the point. 4M entries is about 32 MiB
per float64 array, of which the solvers hold about ten."""


CAPACITY_RTOL = 1e-12
"""How close (relative) each target weight of an ``n x m`` pair (``m < n``) must be to
a whole multiple of the uniform source weight for the pair to be solved as an
assignment with column capacities: summed cluster weights of a coarsening differ from
the multiple by round-off only, and the assignment path then solves with the exact
multiple (a relative change of the value of the same order)."""

TIE_FRACTION = 0.01
"""Share of a feature cost's entries that must repeat a value of their row or column
for the pair to take POT's own arithmetic (see ``_repeats_values``): categorical labels
repeat in most entries, continuous features at most in a handful."""


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


# --------------------------------------------------------------------------- inputs


@dataclass(slots=True)
class _Batch:
    """Padded batch of problems in one namespace (shapes ``B, N, M``)."""

    xp: ModuleType
    M: Any  # (B, N, M)
    C1: Any  # (B, N, N)
    C2: Any  # (B, M, M)
    p: Any  # (B, N)
    q: Any  # (B, M)
    p_host: np.ndarray  # (B, N) float64
    q_host: np.ndarray  # (B, M) float64
    sizes: list[tuple[int, int]]
    symmetric: bool


def _check_shapes(M: np.ndarray, C1: np.ndarray, C2: np.ndarray, p: np.ndarray, q: np.ndarray) -> None:
    n, m = M.shape if M.ndim == 2 else (-1, -1)
    if M.ndim != 2 or C1.shape != (n, n) or C2.shape != (m, m):
        raise ValueError(
            f"shapes must be M (n, m), C1 (n, n), C2 (m, m); got {M.shape}, {C1.shape}, {C2.shape}"
        )
    if p.shape != (n,) or q.shape != (m,):
        raise ValueError(f"weights must have shapes ({n},) and ({m},); got {p.shape}, {q.shape}")
    if n == 0 or m == 0:
        raise ValueError("graphs must have at least one node")


def _check_weights(p: np.ndarray, q: np.ndarray) -> None:
    """Vectorised weight checks on a padded batch ``(B, N)``, ``(B, M)``."""
    if not (np.isfinite(p).all() and np.isfinite(q).all()):
        raise ValueError("weights must be finite")
    if (p < 0).any() or (q < 0).any():
        raise ValueError("weights must be non-negative")
    gap = np.abs(p.sum(axis=1) - q.sum(axis=1))
    if (gap > MASS_ATOL).any():
        k = int(np.argmax(gap))
        raise ValueError(f"p and q must have the same mass; got {p[k].sum()} and {q[k].sum()} (pair {k})")


def _is_symmetric(C: np.ndarray) -> bool:
    """POT's test, ``np.allclose(C, C.T, atol=1e-10)``, over a whole stack ``(B, N, N)``."""
    Ct = np.swapaxes(C, 1, 2)
    if np.array_equal(C, Ct):
        return True
    return bool(np.all(np.abs(C - Ct) <= SYMMETRY_ATOL + SYMMETRY_RTOL * np.abs(Ct)))


def _resolve(arrays: Sequence[Any], backend: str | ModuleType) -> tuple[ModuleType, Any]:
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


def _result_dtype(arrays: Sequence[Any]) -> str:
    """float32 when every floating input is float32, else float64."""
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


def _pad(host: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    if all(a.shape == shape for a in host):
        return np.stack(host)
    out = np.zeros((len(host), *shape), dtype=np.float64)
    for k, a in enumerate(host):
        out[(k, *(slice(0, s) for s in a.shape))] = a
    return out


def _host(x: Any) -> np.ndarray:
    if type(x) is np.ndarray and x.dtype == np.float64:
        return x
    return np.asarray(bk.to_numpy(x), dtype=np.float64)


def _make_batch(
    problems: Sequence[tuple[Any, Any, Any, Any, Any]], xp: ModuleType, dtype: str, device: Any
) -> _Batch:
    Ms, C1s, C2s, ps, qs = [], [], [], [], []
    for M, C1, C2, p, q in problems:
        M, C1, C2 = _host(M), _host(C1), _host(C2)
        n, m = len(C1), len(C2)
        p = np.full(n, 1.0 / n) if p is None else _host(p)
        q = np.full(m, 1.0 / m) if q is None else _host(q)
        _check_shapes(M, C1, C2, p, q)
        Ms.append(M), C1s.append(C1), C2s.append(C2), ps.append(p), qs.append(q)
    N = max(len(p) for p in ps)
    Mx = max(len(q) for q in qs)
    host = {
        "M": _pad(Ms, (N, Mx)),
        "C1": _pad(C1s, (N, N)),
        "C2": _pad(C2s, (Mx, Mx)),
        "p": _pad(ps, (N,)),
        "q": _pad(qs, (Mx,)),
    }
    _check_weights(host["p"], host["q"])
    symmetric = _is_symmetric(host["C1"]) and _is_symmetric(host["C2"])
    dev = {k: bk.asarray_on(v.astype(dtype, copy=False), xp, device=device) for k, v in host.items()}
    return _Batch(
        xp=xp,
        p_host=host["p"],
        q_host=host["q"],
        sizes=[(len(p), len(q)) for p, q in zip(ps, qs, strict=True)],
        symmetric=symmetric,
        **dev,
    )


def _on_gpu(xp: ModuleType, device: Any) -> bool:
    return bk.backend_name(xp) == "cupy" or "cuda" in str(device)


def _chunks(sizes: Sequence[tuple[int, int]], max_entries: int) -> list[list[int]]:
    """Indices grouped into batches of similar shapes of at most ``max_entries`` entries."""
    order = sorted(range(len(sizes)), key=lambda k: (sizes[k][0] * sizes[k][1], sizes[k]))
    chunks: list[list[int]] = []
    current: list[int] = []
    n_max = m_max = 0
    for k in order:
        n, m = sizes[k]
        n2, m2 = max(n_max, n), max(m_max, m)
        if current and (len(current) + 1) * max(n2, m2) ** 2 > max_entries:
            chunks.append(current)
            current, n2, m2 = [], n, m
        current.append(k)
        n_max, m_max = n2, m2
    if current:
        chunks.append(current)
    return chunks


# --------------------------------------------------------------------------- shared algebra


class _Structure:
    r"""Precomputed square-loss terms for a batch (Peyré et al. 2016, Prop. 1).

    ``constC`` is :math:`c_{C_1,C_2}`, and :meth:`tensor` is
    :math:`L(X) = C_1 X (2 C_2)^\top`, so the loss is :math:`\langle c - L(T), T\rangle` and
    its gradient :math:`2(c - L(T))`. For non-symmetric structures the transposed
    pair (``C1.T``, ``C2.T``) is kept too and the gradient is POT's average of both.
    """

    def __init__(self, b: _Batch) -> None:
        xp = b.xp
        self.xp = xp
        self.symmetric = b.symmetric
        self.C1 = b.C1
        self.h2t = 2.0 * xp.linalg.matrix_transpose(b.C2)  # (hC2)^T with hC2 = 2 C2
        f1 = xp.matmul(b.C1 * b.C1, b.p[..., None])  # (B, N, 1)
        f2 = xp.matmul(b.C2 * b.C2, b.q[..., None])  # (B, M, 1)
        self.constC = f1 + xp.linalg.matrix_transpose(f2)
        if not self.symmetric:
            self.C1t = xp.linalg.matrix_transpose(b.C1)
            self.h2 = 2.0 * b.C2
            f1t = xp.matmul(self.C1t * self.C1t, b.p[..., None])
            c2t = xp.linalg.matrix_transpose(b.C2)
            f2t = xp.matmul(c2t * c2t, b.q[..., None])
            self.constCt = f1t + xp.linalg.matrix_transpose(f2t)

    def take(self, idx: Any) -> None:
        xp = self.xp
        for name in ("C1", "h2t", "constC", "C1t", "h2", "constCt"):
            if hasattr(self, name):
                setattr(self, name, xp.take(getattr(self, name), idx, axis=0))

    def tensor(self, X: Any) -> Any:
        """:math:`L(X) = C_1 X (2C_2)^\\top`, batched: two matrix products."""
        xp = self.xp
        return xp.matmul(xp.matmul(self.C1, X), self.h2t)

    def tensor_t(self, X: Any) -> Any:
        """:math:`L^\\top(X) = C_1^\\top X (2C_2)` (non-symmetric structures only)."""
        xp = self.xp
        return xp.matmul(xp.matmul(self.C1t, X), self.h2)

    def tensor_rank1(self, p: Any, q: Any) -> Any:
        """:math:`L(p q^\\top) = (C_1 p)(2 C_2 q)^\\top` without forming the product."""
        xp = self.xp
        left = xp.matmul(self.C1, p[..., None])
        right = xp.matmul(q[:, None, :], self.h2t)
        return left * right

    def tensor_t_rank1(self, p: Any, q: Any) -> Any:
        xp = self.xp
        left = xp.matmul(self.C1t, p[..., None])
        right = xp.matmul(q[:, None, :], self.h2)
        return left * right


def _bdot(xp: ModuleType, a: Any, b: Any) -> Any:
    """Per-pair Frobenius inner product of two ``(B, N, M)`` stacks (one fused pass)."""
    k = a.shape[1] * a.shape[2]
    # matmul of (B, 1, k) by (B, k, 1): a BLAS dot per pair (array_api_compat's
    # vecdot for numpy goes through a generic broadcast and is ~100x slower)
    out = xp.matmul(xp.reshape(a, (a.shape[0], 1, k)), xp.reshape(b, (b.shape[0], k, 1)))
    return out[:, 0, 0]


def _linesearch_step(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """POT's ``solve_1d_linesearch_quad``, vectorised: argmin over [0, 1] of a t^2 + b t."""
    with np.errstate(divide="ignore", invalid="ignore"):
        convex = np.clip(-b / (2.0 * a), 0.0, 1.0)
    nonconvex = np.where(a + b < 0, 1.0, 0.0)
    return np.where(a > 0, convex, nonconvex)


# --------------------------------------------------------------------------- exact (CG)


def _cg_pot_order(
    M: np.ndarray,
    C1: np.ndarray,
    C2: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    alpha: float,
    max_iter: int,
    tol: float,
) -> tuple[float, np.ndarray, int, bool]:
    """POT's CG for one pair, on the host, in POT's own order of floating-point operations.

    Used where the linear subproblems are riddled with exact ties (no feature term:
    ``alpha == 1`` or a constant ``M``). Which optimal vertex a tie resolves to then
    decides which local minimum CG reaches, so the only way to land where POT lands
    is to feed its network simplex bit-identical costs: this repeats the arithmetic of
    ``ot.gromov.init_matrix``, ``gwggrad``, ``solve_gromov_linesearch`` and
    ``ot.optim.generic_conditional_gradient`` (two dense tensor products per
    iteration, no assignment shortcut). Returns (distance, plan, n_iter, converged).
    """
    symmetric = np.allclose(C1, C1.T, atol=SYMMETRY_ATOL) and np.allclose(C2, C2.T, atol=SYMMETRY_ATOL)

    def init(A1: np.ndarray, A2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        fC1, fC2, hC1, hC2 = A1**2, A2**2, A1, 2 * A2
        constC1 = np.dot(np.dot(fC1, p.reshape(-1, 1)), np.ones((1, len(q))))
        constC2 = np.dot(np.ones((len(p), 1)), np.dot(q.reshape(1, -1), fC2.T))
        return constC1 + constC2, hC1, hC2

    def tens(cC: np.ndarray, h1: np.ndarray, h2: np.ndarray, T: np.ndarray) -> np.ndarray:
        return cC + (-np.dot(np.dot(h1, T), h2.T))

    constC, hC1, hC2 = init(C1, C2)
    if not symmetric:
        constCt, hC1t, hC2t = init(C1.T, C2.T)
    Mlin = (1 - alpha) * M
    G = (p[:, None] * q[None, :]).copy()
    cost = np.sum(Mlin * G) + alpha * np.sum(tens(constC, hC1, hC2, G) * G)
    for it in range(1, max_iter + 1):
        old = cost
        if symmetric:
            df = 2 * tens(constC, hC1, hC2, G)
        else:
            df = 0.5 * (2 * tens(constC, hC1, hC2, G) + 2 * tens(constCt, hC1t, hC2t, G))
        Gc = bk.emd_dense(p, q, Mlin + alpha * df)
        dG = Gc - G
        dot = np.dot(np.dot(hC1, dG), hC2.T)
        a = -alpha * np.sum(dot * dG)
        if symmetric:
            b = np.sum((1 - alpha) * M * dG) - 2 * alpha * np.sum(dot * G)
        else:
            b = np.sum((1 - alpha) * M * dG) - alpha * (
                np.sum(dot * G) + np.sum(np.dot(np.dot(hC1, G), hC2.T) * dG)
            )
        if a > 0:
            t = min(1.0, max(0.0, -b / (2.0 * a)))
        else:
            t = 1.0 if a + b < 0 else 0.0
        cost = cost + a * (t**2) + b * t
        G = G + t * dG
        delta = abs(cost - old)
        relative = delta / abs(cost) if cost != 0.0 else np.nan
        if relative < tol or delta < tol:
            return float(cost), G, it, True
    return float(cost), G, max_iter, False


def _store_finished(
    results: list[FGWResult | None],
    b: _Batch,
    active: np.ndarray,
    rows: Sequence[int] | np.ndarray,
    distances: Any,
    plans: Any,
    it: int,
    converged: np.ndarray,
    *,
    positions: Sequence[int] | np.ndarray | None = None,
) -> None:
    """Record the pairs at working-set `rows` as finished; plans lose their padding.

    `distances` and `plans` hold row i's values at ``positions[i]`` (default: at the
    row itself, for arrays over the whole working set).
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


def _solve_exact(b: _Batch, alpha: float, max_iter: int, tol: float, return_plan: bool) -> list[FGWResult]:
    """Conditional gradient for a padded batch; mirrors ``ot.optim.cg`` per pair."""
    xp = b.xp
    st = _Structure(b)
    B = len(b.sizes)
    assignment = [
        n == m and bk.is_uniform(b.p_host[k, :n]) and bk.is_uniform(b.q_host[k, :m])
        for k, (n, m) in enumerate(b.sizes)
    ]
    Mlin = (1.0 - alpha) * b.M
    p, q = b.p, b.q
    G = p[:, :, None] * q[:, None, :]
    LG = st.tensor_rank1(p, q)
    LGt = None if st.symmetric else st.tensor_t_rank1(p, q)
    cost = bk.to_numpy(_bdot(xp, Mlin, G) + alpha * _bdot(xp, st.constC - LG, G))
    cost = np.array(cost, dtype=np.float64)

    active = np.arange(B)  # original index of each working row
    results: list[FGWResult | None] = [None] * B
    p_host, q_host = b.p_host, b.q_host

    lp_out = np.zeros((B, *tuple(G.shape[1:])), dtype=np.float64)

    # linearised cost Mi = (1-alpha) M + alpha * grad, grad = 2 (constC - L(G)) (POT's
    # gwggrad; the average with the transposed pair when not symmetric), with the
    # constant part folded once
    if st.symmetric:
        Mconst = Mlin + (2.0 * alpha) * st.constC
    else:
        Mconst = Mlin + alpha * (st.constC + st.constCt)
    for it in range(1, max_iter + 1):
        if st.symmetric:
            Mi = Mconst - (2.0 * alpha) * LG
        else:
            Mi = Mconst - alpha * (LG + LGt)
        Mi = np.asarray(bk.to_numpy(Mi), dtype=np.float64)
        nb = len(active)
        out = lp_out[:nb]
        bk.solve_linear_ot_batch(
            Mi,
            p_host,
            q_host,
            [b.sizes[k] for k in active],
            [assignment[k] for k in active],
            out,
        )
        Gc = bk.asarray_on(out, xp, dtype=G.dtype, device=bk.array_device(G))
        dG = Gc - G
        dot = st.tensor(Gc) - LG  # L(dG) by linearity
        a_ls = -alpha * bk.to_numpy(_bdot(xp, dot, dG))
        if st.symmetric:
            b_ls = bk.to_numpy(_bdot(xp, Mlin, dG) - 2.0 * alpha * _bdot(xp, dot, G))
        else:
            b_ls = bk.to_numpy(_bdot(xp, Mlin, dG) - alpha * (_bdot(xp, dot, G) + _bdot(xp, LG, dG)))
        a_ls = np.asarray(a_ls, dtype=np.float64)
        b_ls = np.asarray(b_ls, dtype=np.float64)
        t = _linesearch_step(a_ls, b_ls)
        t_dev = bk.asarray_on(t, xp, dtype=G.dtype, device=bk.array_device(G))[:, None, None]
        G = G + t_dev * dG
        LG = LG + t_dev * dot
        if not st.symmetric:
            LGt = LGt + t_dev * (st.tensor_t(Gc) - LGt)
        old = cost
        cost = cost + a_ls * t**2 + b_ls * t
        delta = np.abs(cost - old)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(cost != 0.0, delta / np.abs(cost), np.nan)
        done = (rel < tol) | (delta < tol)
        finished = done | (it >= max_iter)
        if finished.any():
            rows = np.flatnonzero(finished)
            _store_finished(results, b, active, rows, cost, G if return_plan else None, it, done)
            keep = np.flatnonzero(~finished)
            if keep.size == 0:
                break
            idx = bk.asarray_on(keep, xp, device=bk.array_device(G))
            active = active[keep]
            cost = cost[keep]
            p_host, q_host = p_host[keep], q_host[keep]
            G, LG, Mlin, Mconst = (xp.take(x, idx, axis=0) for x in (G, LG, Mlin, Mconst))
            if LGt is not None:
                LGt = xp.take(LGt, idx, axis=0)
            st.take(idx)
    return results  # type: ignore[return-value]


_WORKSPACE = threading.local()

WORKSPACE_MAX_ENTRIES = 1 << 18
"""Largest float64 scratch array (entries) that :func:`_scratch` keeps between calls
(2 MiB). Fresh multi-megabyte temporaries are page-faulted in on first touch, which at
n = 32 costs as much as the arithmetic on them; the stacked inputs of the compiled paths
(``M``, ``C1``, ``C2``) therefore live in per-thread buffers reused across calls: at most
about 6 MiB per thread that has run a large batch."""


def _scratch(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 array of ``shape`` backed by this thread's reusable buffer ``name``
    (contents undefined); a plain new array when it is larger than the cap."""
    size = int(np.prod(shape))
    if size > WORKSPACE_MAX_ENTRIES:
        return np.empty(shape)
    pool = getattr(_WORKSPACE, "buffers", None)
    if pool is None:
        pool = _WORKSPACE.buffers = {}
    buf = pool.get(name)
    if buf is None or buf.size < size:
        buf = pool[name] = np.empty(max(size, 1))
    return buf[:size].reshape(shape)


# --------------------------------------------------------------------------- entropic (PGD)


class _SinkhornState:
    r"""Warm-startable Sinkhorn projections for a batch, with absorption.

    The plan of a projection is :math:`T = \mathrm{diag}(u)\,K\,\mathrm{diag}(v)` with
    :math:`K = \exp((f \oplus g - C)/\varepsilon)`. The potentials :math:`f, g` carry
    the scale (they persist across outer iterations, which is the warm start); the
    scalings :math:`u, v` stay near 1 and are folded into :math:`f, g` whenever their
    logs exceed ``absorb_at`` (Schmitzer 2019). Updates are over-relaxed,
    :math:`u \leftarrow u^{1-\omega} (p / K v)^{\omega}` with :math:`\omega = 3/2`
    (Thibault et al. 2017): the same fixed point as Sinkhorn, about half the iterations
    at :math:`\varepsilon = 10^{-2}`, and a square root rather than a power. Pairs
    that meet their tolerance leave the working set.
    Padded (zero-weight) rows and columns keep scaling 1 and never divide by zero:
    their kernel rows and columns are zero, so they carry no mass.
    """

    def __init__(self, xp: ModuleType, p: Any, q: Any, epsilon: float, float32: bool) -> None:
        self.xp = xp
        self.p, self.q = p, q
        rowmask = p > 0
        self.log_p = xp.where(
            rowmask, xp.log(xp.where(rowmask, p, xp.ones_like(p))), xp.full_like(p, -xp.inf)
        )
        self.f, self.g = xp.zeros_like(p), xp.zeros_like(q)
        self.pad_u = xp.astype(~rowmask, p.dtype)
        self.pad_v = xp.astype(~(q > 0), q.dtype)
        self.tiny = float(xp.finfo(p.dtype).smallest_normal)
        self.padded = bool(xp.any(~rowmask)) or bool(xp.any(q <= 0))
        self.epsilon = epsilon
        self.float32 = float32
        self.absorb_at = ABSORB_LOG_THRESHOLD["float32" if float32 else "float64"]

    _PER_PAIR = ("p", "q", "log_p", "f", "g", "pad_u", "pad_v")

    def take(self, idx: Any) -> None:
        xp = self.xp
        for name in self._PER_PAIR:
            setattr(self, name, xp.take(getattr(self, name), idx, axis=0))

    def _kernel(self, w: dict[str, Any]) -> Any:
        r""":math:`K` for the working set ``w`` (scores ``-C/eps``, ``-inf`` off the support).

        float64 takes the plain exponential of :math:`(f \oplus g)/\varepsilon - C/\varepsilon`
        when it is safe (checked: no overflow, no row emptied by underflow); otherwise,
        and always in float32, the log-domain row update renormalises ``f`` first.
        """
        xp, eps = self.xp, self.epsilon
        s = w["neg_cost"] + (w["g"] / eps)[:, None, :]
        if not self.float32:
            K = xp.exp(s + (w["f"] / eps)[:, :, None])
            rows = xp.sum(K, axis=2)
            if bool(xp.all(xp.isfinite(rows) & ((rows > 0) | (w["pad_u"] > 0)))) and self._cols_ok(K, w):
                return K
        K, phi = bk.exp_normalized(s, w["log_p"], xp=xp)
        w["f"] = eps * phi
        if not self._cols_ok(K, w):
            # a column lost to underflow: move its potential up to the row scale
            cols = xp.max(s + phi[:, :, None], axis=1)
            g_fix = xp.where(w["pad_v"] > 0, xp.zeros_like(cols), -cols)
            w["g"] = w["g"] + eps * g_fix
            s = w["neg_cost"] + (w["g"] / eps)[:, None, :]
            K, phi = bk.exp_normalized(s, w["log_p"], xp=xp)
            w["f"] = eps * phi
        return K

    def _cols_ok(self, K: Any, w: dict[str, Any]) -> bool:
        xp = self.xp
        cols = xp.sum(K, axis=1)
        return bool(xp.all((cols > 0) | (w["pad_v"] > 0)))

    def _log(self, x: Any) -> Any:
        """Log of a scaling, clamped to the finite range (a lost row or column shows as a
        large log and is absorbed, not as an infinity that would poison the potentials)."""
        xp = self.xp
        # minimum/maximum rather than clip: array_api_compat's numpy clip broadcasts its
        # bounds to full arrays on every call (~10x slower here)
        return xp.log(xp.minimum(xp.maximum(x, self.tiny), 1.0 / self.tiny))

    def project(self, neg_cost: Any, tol: np.ndarray) -> tuple[Any, np.ndarray]:
        r"""Project onto the marginals for scores :math:`-C/\varepsilon`, shape ``(B, N, M)``.

        ``tol`` is the per-pair tolerance on the :math:`\ell_1` errors of both marginals.
        Returns the plans and, per pair, whether the tolerance was met within
        ``SINKHORN_MAX_ITER`` iterations. Updates the potentials ``f, g``.
        """
        xp, eps, tiny = self.xp, self.epsilon, self.tiny
        w = {name: getattr(self, name) for name in self._PER_PAIR}
        w["neg_cost"] = neg_cost
        rows = np.arange(neg_cost.shape[0])  # batch index of each working pair
        tol = np.asarray(tol, dtype=np.float64)
        K = self._kernel(w)
        u, v = xp.ones_like(w["p"]), xp.ones_like(w["q"])
        ktu = None
        err = np.full(rows.size, np.inf)
        done: list[tuple[np.ndarray, Any, Any, Any, np.ndarray]] = []
        n_blocks = -(-SINKHORN_MAX_ITER // SINKHORN_CHECK_EVERY)
        for block in range(n_blocks + 1):
            kv = xp.matmul(K, v[:, :, None])[:, :, 0]
            if ktu is not None:
                # l1 marginal errors of the current plan diag(u) K diag(v)
                row_err = xp.sum(xp.abs(u * kv - w["p"]), axis=1)
                col_err = xp.sum(xp.abs(v * ktu - w["q"]), axis=1)
                err = np.asarray(bk.to_numpy(xp.maximum(row_err, col_err)), dtype=np.float64)
                ok = err <= tol
                if ok.all() or block == n_blocks:
                    break
                log_u, log_v = self._log(u), self._log(v)
                worst = float(bk.to_numpy(xp.maximum(xp.max(xp.abs(log_u)), xp.max(xp.abs(log_v)))))
                if worst > self.absorb_at:
                    w["f"] = w["f"] + eps * log_u
                    w["g"] = w["g"] + eps * log_v
                    K = self._kernel(w)
                    u, v, ktu = xp.ones_like(u), xp.ones_like(v), None
                    kv = xp.matmul(K, v[:, :, None])[:, :, 0]
                elif ok.sum() >= SINKHORN_RETIRE_FRACTION * ok.size:
                    done.append(self._finish(np.flatnonzero(ok), rows, K, u, v, w, ok))
                    keep = np.flatnonzero(~ok)
                    idx = bk.asarray_on(keep, xp, device=bk.array_device(K))
                    K, u, v, ktu, kv = (xp.take(x, idx, axis=0) for x in (K, u, v, ktu, kv))
                    w = {name: xp.take(x, idx, axis=0) for name, x in w.items()}
                    rows, tol, err = rows[keep], tol[keep], err[keep]
            if self.padded:
                p1, q1 = w["p"] + w["pad_u"], w["q"] + w["pad_v"]
            for step in range(SINKHORN_CHECK_EVERY):
                if step:
                    kv = xp.matmul(K, v[:, :, None])[:, :, 0]
                if self.padded:
                    un = p1 / xp.maximum(kv + w["pad_u"], tiny)
                else:  # kernel rows are positive (checked when built) and v > 0
                    un = w["p"] / kv
                # over-relaxed step u^(1-w) un^w with w = 3/2 (the plain step at the start)
                u = un if ktu is None else un * xp.sqrt(un / u)
                ktu = xp.matmul(u[:, None, :], K)[:, 0, :]
                if self.padded:
                    vn = q1 / xp.maximum(ktu + w["pad_v"], tiny)
                else:
                    vn = w["q"] / ktu
                v = vn * xp.sqrt(vn / v)
        done.append(self._finish(np.arange(rows.size), rows, K, u, v, w, err <= tol))
        if len(done) == 1:
            _, plan, self.f, self.g, ok_all = done[0]
            return plan, ok_all
        order = np.concatenate([d[0] for d in done])
        inverse = bk.asarray_on(np.argsort(order), xp, device=bk.array_device(K))
        plan, self.f, self.g = (
            xp.take(xp.concat([d[i] for d in done], axis=0), inverse, axis=0) for i in (1, 2, 3)
        )
        ok_all = np.concatenate([d[4] for d in done])[np.argsort(order)]
        return plan, ok_all

    def _finish(
        self,
        sel: np.ndarray,
        rows: np.ndarray,
        K: Any,
        u: Any,
        v: Any,
        w: dict[str, Any],
        ok: np.ndarray,
    ) -> tuple[np.ndarray, Any, Any, Any, np.ndarray]:
        """Plans and absorbed potentials of working pairs ``sel``: (batch rows, plan, f, g, ok)."""
        xp, eps = self.xp, self.epsilon
        if sel.size != rows.size:
            idx = bk.asarray_on(sel, xp, device=bk.array_device(K))
            K, u, v = (xp.take(x, idx, axis=0) for x in (K, u, v))
            f, g = xp.take(w["f"], idx, axis=0), xp.take(w["g"], idx, axis=0)
        else:
            f, g = w["f"], w["g"]
        plan = K * (u[:, :, None] * v[:, None, :])
        return rows[sel], plan, f + eps * self._log(u), g + eps * self._log(v), ok[sel]


def _solve_entropic(
    b: _Batch, alpha: float, epsilon: float, max_iter: int, tol: float, return_plan: bool
) -> list[FGWResult]:
    r"""Projected gradient with Sinkhorn projections for a padded batch (POT's PGD).

    Iterates :math:`T_{k+1} = \Phi(T_k)`, :math:`\Phi(T) = \mathrm{Sinkhorn}_\varepsilon(p, q,
    (1-\alpha) M + \alpha \nabla_T \mathrm{GW}(T))` until :math:`\|\Phi(T_k) - T_k\|_F \le`
    ``tol``, like POT. Two things make it cheaper without moving the fixed point:
    the projections are solved to a tolerance proportional to the last plan change
    (``SINKHORN_INEXACT``; the first one and the last ones are tight), and once a
    pair is within ``ANDERSON_START`` of its fixed point the next input is the
    Anderson-extrapolated plan (depth ``ANDERSON_DEPTH``, Walker & Ni 2011) rather
    than the last output. Far from a fixed point the iteration is POT's plain one,
    so it settles in the same basin; the value is taken at the last projection
    :math:`\Phi(T_k)`, a plan meeting the marginals.
    """
    xp = b.xp
    st = _Structure(b)
    B = len(b.sizes)
    float32 = str(b.M.dtype).rsplit(".", 1)[-1] == "float32"
    outer_tol = max(tol, FLOAT32_TOL_FLOOR) if float32 else tol
    inner_floor = max(SINKHORN_TOL, FLOAT32_TOL_FLOOR) if float32 else SINKHORN_TOL
    sk = _SinkhornState(xp, b.p, b.q, epsilon, float32)
    Mlin = (1.0 - alpha) * b.M
    mask = (b.p > 0)[:, :, None] & (b.q > 0)[:, None, :]
    # -C/eps = base + coef * (L(X) [+ L^T(X)]), with -inf off the support (padding)
    if st.symmetric:
        base = -(Mlin + 2.0 * alpha * st.constC) / epsilon
        coef = 2.0 * alpha / epsilon
    else:
        base = -(Mlin + alpha * (st.constC + st.constCt)) / epsilon
        coef = alpha / epsilon
    base = xp.where(mask, base, xp.full_like(base, -xp.inf))
    X = b.p[:, :, None] * b.q[:, None, :]
    LX = st.tensor_rank1(b.p, b.q)
    if not st.symmetric:
        LX = LX + st.tensor_t_rank1(b.p, b.q)
    flat = X.shape[1] * X.shape[2]
    depth = ANDERSON_DEPTH if hasattr(xp, "linalg") else 0
    hist_r = xp.zeros((B, depth, flat), dtype=X.dtype, device=bk.array_device(X))
    hist_f = xp.zeros_like(hist_r)
    prev_r = prev_f = None
    err_prev = np.zeros(B)  # first projection tight
    failures = np.zeros(B, dtype=np.int64)

    active = np.arange(B)
    results: list[FGWResult | None] = [None] * B
    for it in range(1, max_iter + 1):
        inner_tol = np.maximum(inner_floor, SINKHORN_INEXACT * err_prev)
        F, inner_ok = sk.project(base + coef * LX, inner_tol)
        R = xp.reshape(F - X, (F.shape[0], flat))
        Ff = xp.reshape(F, (F.shape[0], flat))
        err = np.asarray(bk.to_numpy(xp.sqrt(xp.sum(R * R, axis=1))), dtype=np.float64)
        tight = inner_tol <= inner_floor
        failures = failures + ~inner_ok
        stalled = (err <= outer_tol) & tight & ~inner_ok
        done = (err <= outer_tol) & tight & inner_ok
        finished = done | stalled | (failures >= SINKHORN_FAILURES) | (it >= max_iter) | ~np.isfinite(err)
        if depth and prev_r is not None:
            slot = (it - 2) % depth
            hist_r[:, slot, :] = R - prev_r
            hist_f[:, slot, :] = Ff - prev_f
        prev_r, prev_f = R, Ff
        use = (err < ANDERSON_START) & (err <= ANDERSON_RESTART * err_prev) & (it > 1)
        if depth and use.any():
            gram = xp.matmul(hist_r, xp.linalg.matrix_transpose(hist_r))
            reg = ANDERSON_REG * xp.sum(xp.reshape(gram, (gram.shape[0], -1)), axis=1) + 1e-300
            eye = xp.eye(depth, dtype=X.dtype, device=bk.array_device(X))
            gram = gram + reg[:, None, None] * eye
            gamma = xp.linalg.solve(gram, xp.matmul(hist_r, R[:, :, None]))  # (B, depth, 1)
            use_dev = bk.asarray_on(use, xp, device=bk.array_device(X))
            gamma = xp.where(use_dev[:, None, None], gamma, xp.zeros_like(gamma))
            Xf = Ff - xp.matmul(xp.linalg.matrix_transpose(gamma), hist_f)[:, 0, :]
            X = xp.reshape(Xf, F.shape)
        else:
            X = F
        err_prev = np.where(np.isfinite(err), err, 0.0)
        if finished.any():
            rows = np.flatnonzero(finished)
            idx = bk.asarray_on(rows, xp, device=bk.array_device(F))
            if rows.size == len(active):
                Fd, LF, cC, Ml = F, st.tensor(F), st.constC, Mlin
            else:
                Fd = xp.take(F, idx, axis=0)
                LF = xp.matmul(xp.matmul(xp.take(st.C1, idx, axis=0), Fd), xp.take(st.h2t, idx, axis=0))
                cC = xp.take(st.constC, idx, axis=0)
                Ml = xp.take(Mlin, idx, axis=0)
            value = np.asarray(
                bk.to_numpy(_bdot(xp, Ml, Fd) + alpha * _bdot(xp, cC - LF, Fd)), dtype=np.float64
            )
            _store_finished(
                results,
                b,
                active,
                rows,
                value,
                Fd if return_plan else None,
                it,
                done,
                positions=range(len(rows)),
            )
            keep = np.flatnonzero(~finished)
            if keep.size == 0:
                break
            idx = bk.asarray_on(keep, xp, device=bk.array_device(F))
            active, err_prev, failures = active[keep], err_prev[keep], failures[keep]
            X, Mlin, base, hist_r, hist_f, prev_r, prev_f = (
                xp.take(x, idx, axis=0) for x in (X, Mlin, base, hist_r, hist_f, prev_r, prev_f)
            )
            st.take(idx)
            sk.take(idx)
        LX = st.tensor(X)
        if not st.symmetric:
            LX = LX + st.tensor_t(X)
    return results  # type: ignore[return-value]


# --------------------------------------------------------------------------- public API


def _validate_options(method: str, alpha: float, epsilon: float, max_iter: int | None) -> int:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
    if method == "entropic" and not epsilon > 0:
        raise ValueError(f"epsilon must be positive; got {epsilon}")
    max_iter = DEFAULT_MAX_ITER[method] if max_iter is None else int(max_iter)
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1; got {max_iter}")
    return max_iter


def fgw_batch(
    problems: Sequence[tuple[Any, Any, Any, Any, Any]],
    *,
    alpha: float = 0.5,
    method: str = "exact",
    epsilon: float = 1e-2,
    max_iter: int | None = None,
    tol: float = 1e-9,
    backend: str | ModuleType = "auto",
    return_plan: bool = False,
) -> list[FGWResult]:
    r"""FGW for many pairs in vectorised calls; same results as :func:`fgw` per pair.

    Pairs are sorted by size and cut into chunks of at most ``MAX_BATCH_ENTRIES``
    padded entries; inside a chunk every pair is padded to the largest ``n`` and
    ``m`` with zero weights and zero costs (zero-weight rows and columns carry no
    mass, so the padding changes no value). Tensor products, line searches and
    Sinkhorn iterations run over the whole chunk at once (``matmul`` over a batch
    axis); only the exact linear subproblems are solved pair by pair, on the host.
    Finished pairs leave the working set.

    Parameters
    ----------
    problems : sequence of (M, C1, C2, p, q)
        Shapes ``(n_k, m_k)``, ``(n_k, n_k)``, ``(m_k, m_k)``, ``(n_k,)``, ``(m_k,)``;
        ``p`` or ``q`` may be ``None`` (uniform).
    alpha, method, epsilon, max_iter, tol, backend, return_plan
        As in :func:`fgw`.

    Returns
    -------
    list of FGWResult
        In the order of ``problems``.
    """
    max_iter = _validate_options(method, alpha, epsilon, max_iter)
    problems = list(problems)
    if not problems:
        return []
    flat = [a for prob in problems for a in prob]
    xp, device = _resolve(flat, backend)
    dtype = _result_dtype(flat)
    results: list[FGWResult | None] = [None] * len(problems)
    rest = list(range(len(problems)))
    if method == "exact":
        # no feature term, or one with repeated values (categorical labels...), leaves
        # the linear subproblems full of exact ties: follow POT's arithmetic exactly
        host = [tuple(None if a is None else _host(a) for a in problems[k]) for k in rest]
        tie_prone = [
            k
            for k, hit in zip(rest, _repeats_values([h[0] for h in host]), strict=True)
            if hit or alpha == 1.0
        ]
        for k in tie_prone:
            M, C1, C2, p, q = host[k]
            batch = _make_batch([problems[k]], xp, dtype, device)  # validates, fills weights
            dist, plan, n_iter, ok = _cg_pot_order(
                M, C1, C2, batch.p_host[0], batch.q_host[0], float(alpha), max_iter, float(tol)
            )
            results[k] = FGWResult(
                distance=dist,
                plan=bk.asarray_on(plan.astype(dtype), xp, device=device) if return_plan else None,
                n_iter=n_iter,
                converged=ok,
            )
        rest = [k for k in rest if results[k] is None]
        if dtype == "float64" and bk.backend_name(xp) == "numpy":
            rest = _run_assignment_pairs(
                problems, host, rest, results, float(alpha), max_iter, float(tol), return_plan
            )
    elif dtype == "float64" and bk.backend_name(xp) == "numpy":
        host = [tuple(None if a is None else _host(a) for a in problems[k]) for k in rest]
        rest = _run_entropic_pairs(
            host, rest, results, float(alpha), float(epsilon), max_iter, float(tol), return_plan
        )
    max_entries = MAX_BATCH_ENTRIES["gpu" if _on_gpu(xp, device) else method]
    sizes = [(_n_nodes(problems[k][1]), _n_nodes(problems[k][2])) for k in rest]
    for sub in _chunks(sizes, max_entries):
        chunk = [rest[i] for i in sub]
        batch = _make_batch([problems[k] for k in chunk], xp, dtype, device)
        if method == "exact":
            out = _solve_exact(batch, float(alpha), max_iter, float(tol), return_plan)
        else:
            out = _solve_entropic(batch, float(alpha), float(epsilon), max_iter, float(tol), return_plan)
        for k, res in zip(chunk, out, strict=True):
            results[k] = res
    return results  # type: ignore[return-value]


def _run_entropic_pairs(
    host: list[tuple[Any, ...]],
    rest: list[int],
    results: list[FGWResult | None],
    alpha: float,
    epsilon: float,
    max_iter: int,
    tol: float,
    return_plan: bool,
) -> list[int]:
    """Solve, on the host, the entropic pairs of ``rest`` that the compiled solver of
    :mod:`kernels.entropic` takes (positive weights of equal mass, exactly symmetric
    structures, finite inputs), grouped by shape; fill ``results`` and return the
    indices left for the batched solver (which also reports any invalid input)."""
    groups = _shape_groups(host, rest)
    if not groups:
        return rest
    from kernels import entropic  # numba: loaded only by processes that need it

    settings = entropic.Settings(
        sinkhorn_tol=SINKHORN_TOL,
        sinkhorn_max_iter=SINKHORN_MAX_ITER,
        sinkhorn_check_every=SINKHORN_CHECK_EVERY,
        sinkhorn_failures=SINKHORN_FAILURES,
        sinkhorn_inexact=SINKHORN_INEXACT,
        absorb_at=ABSORB_LOG_THRESHOLD["float64"],
        anderson_depth=ANDERSON_DEPTH,
        anderson_start=ANDERSON_START,
        anderson_restart=ANDERSON_RESTART,
        anderson_reg=ANDERSON_REG,
    )
    left = set(rest)
    for (n, m), members in groups.items():
        P = np.stack([np.full(n, 1.0 / n) if host[k][3] is None else host[k][3] for k in members])
        Q = np.stack([np.full(m, 1.0 / m) if host[k][4] is None else host[k][4] for k in members])
        ok = (P > 0).all(axis=1) & (Q > 0).all(axis=1)
        ok &= np.abs(P.sum(axis=1) - Q.sum(axis=1)) <= MASS_ATOL
        sel = [k for k, good in zip(members, ok, strict=True) if good]
        if not sel:
            continue
        out = entropic.solve_pairs(
            _stack([host[k][0] for k in sel], "in_M"),  # groups run one at a time
            _stack([host[k][1] for k in sel], "in_C1"),
            _stack([host[k][2] for k in sel], "in_C2"),
            P[ok],
            Q[ok],
            alpha,
            epsilon,
            max_iter,
            tol,
            settings,
            return_plan=return_plan,
        )
        _store_compiled(results, left, sel, out)
    return [k for k in rest if k in left]


def _shape_groups(host: list[tuple[Any, ...]], rest: list[int]) -> dict[tuple[int, int], list[int]]:
    """The pairs of ``rest`` with consistent, non-empty shapes, grouped by ``(n, m)``
    (the others are left to the general solver, which says what is wrong with them)."""
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


def _store_compiled(results: list[FGWResult | None], left: set[int], sel: list[int], out: Any) -> None:
    """Results of a compiled solver (``kernels.assignment.PairResults`` for the pairs
    ``sel``) into ``results``; pairs it handed back (not symmetric, not finite) stay in
    ``left`` for the general solver."""
    from kernels import assignment

    # Python scalars from tolist(): one conversion per array, not one per value
    fields = (out.status.tolist(), out.distance.tolist(), out.n_iter.tolist(), out.converged.tolist())
    for row, (k, status, distance, n_iter, converged) in enumerate(zip(sel, *fields, strict=True)):
        if status != assignment.OK:
            continue
        plan = out.plans[row] if out.plans is not None else None
        results[k] = FGWResult(distance=distance, plan=plan, n_iter=n_iter, converged=converged)
        left.discard(k)


def _stack(arrays: list[np.ndarray], name: str | None) -> np.ndarray:
    """Arrays of one shape as a float64 stack, in scratch buffer ``name`` (a new array
    when ``None``); a single C-contiguous float64 array as a view (no copy: an RD
    curve's levels are one pair each, all sharing the graph's structure)."""
    first = arrays[0]
    if len(arrays) == 1 and first.dtype == np.float64 and first.flags.c_contiguous:
        return first[None]
    if name is None:
        return np.stack(arrays).astype(np.float64, copy=False)
    return np.stack(arrays, out=_scratch(name, (len(arrays), *first.shape)))


def _run_assignment_pairs(
    problems: Sequence[tuple[Any, Any, Any, Any, Any]],
    host: list[tuple[Any, ...]],
    rest: list[int],
    results: list[FGWResult | None],
    alpha: float,
    max_iter: int,
    tol: float,
    return_plan: bool,
) -> list[int]:
    """Solve, on the host, the pairs of ``rest`` whose linear subproblems are assignments
    with the compiled solver of :mod:`kernels.assignment`, grouped by shape; fill
    ``results`` and return the indices left for the general solver.

    Those are the pairs with uniform source weights ``p = w 1`` and target weights that
    are whole multiples of ``w`` (``q = p`` when ``n == m``, as given; for ``m < n``
    within round-off, as the summed cluster weights of a coarsening), with exactly
    symmetric structures (checked by the solver, which hands the others back)."""
    groups = {(n, m): ks for (n, m), ks in _shape_groups(host, rest).items() if m <= n}
    if not groups:
        return rest
    from kernels import assignment  # numba: loaded (~0.4 s) only by processes that need it

    ordered = [k for ks in groups.values() for k in ks]  # each group's pairs together
    w, ok, cap = _assignment_capacities([host[k][3] for k in ordered], [host[k][4] for k in ordered], groups)
    chosen: list[list[int]] = []
    stacks: list[assignment.PairStack] = []
    at = cap_at = 0
    for slot, ((_, m), members) in enumerate(groups.items()):
        B = len(members)
        good = ok[at : at + B]
        sel = [k for k, hit in zip(members, good.tolist(), strict=True) if hit]
        if sel:
            chosen.append(sel)
            stacks.append(
                assignment.PairStack(
                    # all groups' stacks live at once: only the first reuses scratch buffers,
                    # so many shapes do not leave many kept buffers behind
                    M=_stack([host[k][0] for k in sel], "in_M" if slot == 0 else None),
                    C1=_stack([host[k][1] for k in sel], "in_C1" if slot == 0 else None),
                    C2=_stack([host[k][2] for k in sel], "in_C2" if slot == 0 else None),
                    w=w[at : at + B][good],
                    cap=cap[cap_at : cap_at + B * m].reshape(B, m)[good],
                )
            )
        at += B
        cap_at += B * m
    left = set(rest)
    outs = assignment.solve_many(stacks, alpha, max_iter, tol, return_plan=return_plan)
    for sel, out in zip(chosen, outs, strict=True):
        _store_compiled(results, left, sel, out)
    return [k for k in rest if k in left]


def _or_uniform(weights: np.ndarray | None, n: int) -> np.ndarray:
    return np.full(n, 1.0 / n) if weights is None else weights


def _assignment_capacities(
    ps: list[Any], qs: list[Any], groups: dict[tuple[int, int], list[int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which pairs' linear subproblems are assignments (see :func:`_run_assignment_pairs`).

    ``ps``, ``qs``: the weights (``None``: uniform) of the pairs of ``groups``, group
    after group. Returns per pair the unit weight ``w`` (``p = w 1``) and whether the
    pair qualifies, and the capacities ``q / w`` of all pairs concatenated (int64; 1
    when ``n == m``). One set of numpy calls on the concatenated weights for all
    groups, where a set per group cost 35 us for each level of an RD curve."""
    ns = np.array([n for (n, _), ks in groups.items() for _ in ks])
    ms = np.array([m for (_, m), ks in groups.items() for _ in ks])
    p = np.concatenate([_or_uniform(a, n) for a, n in zip(ps, ns.tolist(), strict=True)])
    q = np.concatenate([_or_uniform(a, m) for a, m in zip(qs, ms.tolist(), strict=True)])
    p_at, q_at = np.cumsum(ns) - ns, np.cumsum(ms) - ms  # each pair's first entry
    w = p[p_at].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ok = np.logical_and.reduceat(p == np.repeat(w, ns), p_at) & (w > 0) & np.isfinite(w)
        unit = np.repeat(np.where(ok, w, 1.0), ms)
        square = np.repeat(ns == ms, ms)
        cap = np.where(square, 1.0, np.rint(q / unit))
        # n == m: q = p exactly; m < n: whole multiples of w within round-off, summing to n
        fits = np.where(square, q == unit, (cap >= 1) & (np.abs(q - cap * unit) <= CAPACITY_RTOL * q))
        ok &= np.logical_and.reduceat(fits, q_at) & (np.add.reduceat(cap, q_at) == ns)
        cap = np.where((cap >= 0) & (cap <= np.repeat(ns, ms)), cap, 0).astype(np.int64)
    return w, ok, cap


def _repeats_values(Ms: list[np.ndarray]) -> list[bool]:
    """Per feature cost: whether its rows and columns repeat values often enough to
    make the linear subproblems tie-prone.

    When a row or a column holds a value twice, two candidate matches of a node cost
    the same on features, and the linear subproblems of CG can meet exact ties that
    only POT's own arithmetic resolves POT's way. Categorical labels make that the
    rule (most entries repeat a value of their row); continuous features make it a
    rare accident (two nodes at exactly the same distance from a coarse node's mean),
    where the structure term still separates the candidates. A cost counts as
    tie-prone when at least ``TIE_FRACTION`` of its entries repeat a neighbour in
    their sorted row or column, or when it is too small for a fraction to mean
    anything (any repeat then counts). Costs of equal shape are screened together.
    """
    from kernels import assignment  # numba: loaded only by processes that need it

    out = [False] * len(Ms)
    groups: dict[tuple[int, ...], list[int]] = {}
    for k, M in enumerate(Ms):
        if M.ndim == 2 and M.size:
            groups.setdefault(M.shape, []).append(k)
    for shape, members in groups.items():
        B = len(members)
        need = max(1.0, TIE_FRACTION * shape[0] * shape[1])
        # a value repeated within a row or column repeats within the matrix, and each
        # matrix-wide repeat makes at most two row/column repeats: counting those (in
        # compiled code, by hashing) clears most costs. It counts them rounded to
        # float32: rounding maps equal values to equal values, so it finds at least as
        # many repeats and clears no cost that the exact test would flag
        rounded = np.empty((B, *shape), dtype=np.float32)  # (stacked straight into float32)
        with np.errstate(over="ignore"):  # beyond float32: inf, counted like any other
            np.stack([Ms[k] for k in members], out=rounded, casting="same_kind")
        suspect = 2 * assignment.float32_repeats(rounded) >= need
        if not suspect.any():
            continue
        members = [k for k, hit in zip(members, suspect, strict=True) if hit]
        stack = np.stack([Ms[k] for k in members])
        rows = np.sort(stack, axis=2)
        cols = np.sort(stack, axis=1)
        repeats = np.count_nonzero(rows[:, :, 1:] == rows[:, :, :-1], axis=(1, 2)) + (
            np.count_nonzero(cols[:, 1:, :] == cols[:, :-1, :], axis=(1, 2))
        )
        hit = repeats >= need
        for k, h in zip(members, hit, strict=True):
            out[k] = bool(h)
    return out


def _n_nodes(C: Any) -> int:
    shape = getattr(C, "shape", None)
    return int(shape[0]) if shape is not None else len(C)


def fgw(
    M: Any,
    C1: Any,
    C2: Any,
    p: Any = None,
    q: Any = None,
    *,
    alpha: float = 0.5,
    method: str = "exact",
    epsilon: float = 1e-2,
    max_iter: int | None = None,
    tol: float = 1e-9,
    backend: str | ModuleType = "auto",
    return_plan: bool = False,
) -> FGWResult:
    r"""Fused Gromov-Wasserstein distance with the square loss.

    .. math::
        \mathrm{FGW}_\alpha = \min_{T \in \Pi(p, q)} (1-\alpha)\langle M, T\rangle
        + \alpha \sum_{i,j,k,l} (C_{1,ik} - C_{2,jl})^2 T_{ij} T_{kl}

    (a local minimum: the problem is a non-convex quadratic program).

    Parameters
    ----------
    M : array, shape (n, m)
        Feature cost between the nodes of the two graphs.
    C1 : array, shape (n, n)
        Structure matrix of the first graph (e.g. normalised shortest paths).
    C2 : array, shape (m, m)
        Structure matrix of the second graph.
    p : array, shape (n,), optional
        Node weights of the first graph; uniform by default.
    q : array, shape (m,), optional
        Node weights of the second graph (same total mass as ``p``); uniform by default.
    alpha : float
        Trade-off in [0, 1]: 0 is Wasserstein on features, 1 is Gromov-Wasserstein.
    method : {"exact", "entropic"}
        ``"exact"``: POT's ``fused_gromov_wasserstein2`` (conditional gradient).
        ``"entropic"``: POT's ``entropic_fused_gromov_wasserstein2(solver="PGD")``;
        the value excludes the entropy term.
    epsilon : float
        Entropic regularisation (``entropic`` only), in the units of ``M``.
    max_iter : int, optional
        Outer iteration cap; ``DEFAULT_MAX_ITER[method]`` (POT's) when ``None``.
    tol : float
        ``exact``: stop when the objective's relative or absolute change is below
        ``tol`` (POT's ``tol_rel`` and ``tol_abs``). ``entropic``: stop when the
        Frobenius norm of the plan's change is at most ``tol`` (POT's ``tol``,
        checked here at every iteration rather than every tenth). Floored at
        ``FLOAT32_TOL_FLOOR`` in float32.
    backend : str or namespace
        ``"numpy"``, ``"torch"``, ``"cupy"`` or ``"auto"`` (see
        :func:`kernels.backend.get_backend`; ``"auto"`` keeps torch/cupy inputs where
        they are), or an array-API namespace.
    return_plan : bool
        Return the coupling as an array of the backend.

    Returns
    -------
    FGWResult
        ``distance``, ``plan`` (or ``None``), ``n_iter``, ``converged``.
        Computed in float32 when every input is float32, else float64.

    Examples
    --------
    >>> import numpy as np
    >>> from kernels.fgw import fgw
    >>> C = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> M = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> fgw(M, C, C).distance
    0.0
    """
    return fgw_batch(
        [(M, C1, C2, p, q)],
        alpha=alpha,
        method=method,
        epsilon=epsilon,
        max_iter=max_iter,
        tol=tol,
        backend=backend,
        return_plan=return_plan,
    )[0]
