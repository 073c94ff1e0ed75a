r"""Entropic FGW (POT's PGD), one pair per compiled loop: the compiled solver.

The same algorithm as the reference :func:`kernels.fgw._entropic.solve_batch`
(projected gradient with warm-started, over-relaxed Sinkhorn projections with
absorption, inexact early projections, Anderson acceleration near the fixed point;
see :mod:`kernels.fgw._entropic`), with the same constants, written for one pair at a
time as compiled code (:mod:`kernels._numba`) for float64 numpy pairs with positive
weights and exactly symmetric structures. A pair's whole solve runs without leaving
compiled code, pairs stop on their own, and :func:`solve_pairs` spreads them over
threads. It reaches the reference's fixed points, values agreeing to about 1e-8
relative.

:func:`solve_problems` is the entry point of :func:`kernels.fgw.fgw_batch`: it picks
the pairs this solver can take, stacks them by shape and hands the others back.

References
----------
Peyré, Cuturi, Solomon. "Gromov-Wasserstein averaging of kernel and distance
matrices", ICML 2016.
Schmitzer. "Stabilized sparse scaling algorithms for entropy regularized transport
problems", SIAM J. Sci. Comput. 2019.
Thibault, Chizat, Dossal, Papadakis. "Overrelaxed Sinkhorn-Knopp algorithm for
regularized optimal transport", 2017.
Walker, Ni. "Anderson acceleration for fixed-point iterations", SIAM J. Numer. Anal. 2011.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kernels._numba import all_finite, is_symmetric, jit, run_tasks
from kernels.fgw import _entropic
from kernels.fgw._batch import (
    NOT_FINITE,
    NOT_SYMMETRIC,
    OK,
    FGWResult,
    PairResults,
    or_uniform,
    shape_groups,
    stack,
    store_compiled,
)
from kernels.fgw._validation import MASS_ATOL

PAIRS_PER_TASK = 8
"""Pairs a pool thread takes at a time (entropic pairs differ a lot in cost)."""

TINY = float(np.finfo(np.float64).smallest_normal)

NOT_POSITIVE = (
    "a weight is zero (zero-weight nodes are padding, which only the reference solver handles) "
    "or the masses differ"
)
BAD_SHAPES = "its arrays' shapes do not agree"


@dataclass(frozen=True)
class Settings:
    """The solver constants of :mod:`kernels.fgw._entropic`, passed in so that both
    solvers share them (:meth:`reference` gives them)."""

    sinkhorn_tol: float
    sinkhorn_max_iter: int
    sinkhorn_check_every: int
    sinkhorn_failures: int
    sinkhorn_inexact: float
    absorb_at: float
    anderson_depth: int
    anderson_start: float
    anderson_restart: float
    anderson_reg: float

    @classmethod
    def reference(cls) -> Settings:
        """The reference solver's constants (float64)."""
        return cls(
            sinkhorn_tol=_entropic.SINKHORN_TOL,
            sinkhorn_max_iter=_entropic.SINKHORN_MAX_ITER,
            sinkhorn_check_every=_entropic.SINKHORN_CHECK_EVERY,
            sinkhorn_failures=_entropic.SINKHORN_FAILURES,
            sinkhorn_inexact=_entropic.SINKHORN_INEXACT,
            absorb_at=_entropic.ABSORB_LOG_THRESHOLD["float64"],
            anderson_depth=_entropic.ANDERSON_DEPTH,
            anderson_start=_entropic.ANDERSON_START,
            anderson_restart=_entropic.ANDERSON_RESTART,
            anderson_reg=_entropic.ANDERSON_REG,
        )


@jit
def _clamped_log(x):
    return np.log(min(max(x, TINY), 1.0 / TINY))


@jit
def _kernel(S, f, g, log_p, eps, K):
    """``K = exp(S + (f (+) g)/eps)`` into ``K``, where safe; else the log-domain row
    update (``f`` renormalised) and, if a column underflowed, ``g`` moved up to it."""
    n, m = S.shape
    safe = True
    for i in range(n):
        row = 0.0
        for j in range(m):
            K[i, j] = np.exp(S[i, j] + (f[i] + g[j]) / eps)
            row += K[i, j]
        if not (np.isfinite(row) and row > 0.0):
            safe = False
    if safe and _cols_ok(K):
        return
    for attempt in range(2):
        for i in range(n):
            top = -np.inf
            for j in range(m):
                top = max(top, S[i, j] + g[j] / eps)
            row = 0.0
            for j in range(m):
                K[i, j] = np.exp(S[i, j] + g[j] / eps - top)
                row += K[i, j]
            phi = log_p[i] - top - np.log(row)
            scale = np.exp(log_p[i]) / row
            for j in range(m):
                K[i, j] *= scale
            f[i] = eps * phi
        if attempt == 1 or _cols_ok(K):
            return
        # a column lost to underflow: move its potential up to the row scale
        for j in range(m):
            top = -np.inf
            for i in range(n):
                top = max(top, S[i, j] + g[j] / eps + f[i] / eps)
            g[j] -= eps * top


@jit
def _cols_ok(K):
    n, m = K.shape
    for j in range(m):
        col = 0.0
        for i in range(n):
            col += K[i, j]
        if not col > 0.0:
            return False
    return True


@jit
def _project(S, p, q, log_p, f, g, eps, tol, max_iter, check_every, absorb_at, K, plan):
    """Sinkhorn projection for scores ``S = -C/eps`` warm-started from the potentials
    ``f, g`` (updated); writes the plan, returns whether the l1 marginal errors met
    ``tol`` within ``max_iter`` iterations (``kernels.fgw._entropic.SinkhornState.project``)."""
    n, m = S.shape
    _kernel(S, f, g, log_p, eps, K)
    u = np.ones(n)
    v = np.ones(m)
    kv = np.empty(n)
    ktu = np.empty(m)
    have_ktu = False
    err = np.inf
    n_blocks = -(-max_iter // check_every)
    for block in range(n_blocks + 1):
        kv[:] = K @ v
        if have_ktu:
            row_err = 0.0
            for i in range(n):
                row_err += abs(u[i] * kv[i] - p[i])
            col_err = 0.0
            for j in range(m):
                col_err += abs(v[j] * ktu[j] - q[j])
            err = max(row_err, col_err)
            if err <= tol or block == n_blocks:
                break
            worst = 0.0
            for i in range(n):
                worst = max(worst, abs(_clamped_log(u[i])))
            for j in range(m):
                worst = max(worst, abs(_clamped_log(v[j])))
            if worst > absorb_at:
                for i in range(n):
                    f[i] += eps * _clamped_log(u[i])
                    u[i] = 1.0
                for j in range(m):
                    g[j] += eps * _clamped_log(v[j])
                    v[j] = 1.0
                _kernel(S, f, g, log_p, eps, K)
                have_ktu = False
                kv[:] = K @ v
        for step in range(check_every):
            if step:
                kv[:] = K @ v
            for i in range(n):
                un = p[i] / kv[i]
                # over-relaxed step u^(1-w) un^w with w = 3/2 (the plain step at the start)
                u[i] = un * np.sqrt(un / u[i]) if have_ktu else un
            ktu[:] = u @ K
            have_ktu = True
            for j in range(m):
                vn = q[j] / ktu[j]
                v[j] = vn * np.sqrt(vn / v[j])
    for i in range(n):
        for j in range(m):
            plan[i, j] = K[i, j] * u[i] * v[j]
    for i in range(n):
        f[i] += eps * _clamped_log(u[i])
    for j in range(m):
        g[j] += eps * _clamped_log(v[j])
    return err <= tol


@jit
def _pgd_pair(M, C1, C2, p, q, alpha, eps, max_iter, tol, cfg, plan_out):
    """PGD for one pair; returns (value, n_iter, converged, status)."""
    (sk_tol, sk_max, sk_every, sk_failures, inexact, absorb_at, depth, a_start, a_restart, a_reg) = cfg
    n, m = M.shape
    if not (all_finite(M) and all_finite(C1) and all_finite(C2)):
        return 0.0, 0, False, NOT_FINITE
    if not (is_symmetric(C1) and is_symmetric(C2)):
        return 0.0, 0, False, NOT_SYMMETRIC
    c1 = (C1 * C1) @ p
    c2 = (C2 * C2) @ q
    log_p = np.log(p)
    # -C/eps = base + coef * L(X), L(X) = 2 C1 X C2
    base = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            base[i, j] = -((1.0 - alpha) * M[i, j] + 2.0 * alpha * (c1[i] + c2[j])) / eps
    coef = 2.0 * alpha / eps
    X = np.outer(p, q)
    LX = 2.0 * (C1 @ X @ C2)
    S = np.empty((n, m))
    K = np.empty((n, m))
    F = np.empty((n, m))
    f = np.zeros(n)
    g = np.zeros(m)
    flat = n * m
    hist_r = np.zeros((depth, flat))
    hist_f = np.zeros((depth, flat))
    prev_r = np.zeros(flat)
    prev_f = np.zeros(flat)
    R = np.empty(flat)
    Ff = F.reshape(flat)  # a view
    err_prev = 0.0
    failures = 0
    for it in range(1, max_iter + 1):
        inner_tol = max(sk_tol, inexact * err_prev)
        for i in range(n):
            for j in range(m):
                S[i, j] = base[i, j] + coef * LX[i, j]
        inner_ok = _project(S, p, q, log_p, f, g, eps, inner_tol, sk_max, sk_every, absorb_at, K, F)
        err2 = 0.0
        for i in range(n):
            for j in range(m):
                R[i * m + j] = F[i, j] - X[i, j]
                err2 += R[i * m + j] * R[i * m + j]
        err = np.sqrt(err2)
        tight = inner_tol <= sk_tol
        if not inner_ok:
            failures += 1
        stalled = err <= tol and tight and not inner_ok
        done = err <= tol and tight and inner_ok
        finished = done or stalled or failures >= sk_failures or it >= max_iter or not np.isfinite(err)
        if depth > 0 and it > 1:
            slot = (it - 2) % depth
            for k in range(flat):
                hist_r[slot, k] = R[k] - prev_r[k]
                hist_f[slot, k] = Ff[k] - prev_f[k]
        for k in range(flat):
            prev_r[k] = R[k]
            prev_f[k] = Ff[k]
        use = depth > 0 and err < a_start and err <= a_restart * err_prev and it > 1
        if finished:
            LF = 2.0 * (C1 @ F @ C2)
            value = 0.0
            for i in range(n):
                for j in range(m):
                    value += ((1.0 - alpha) * M[i, j] + alpha * (c1[i] + c2[j] - LF[i, j])) * F[i, j]
            if plan_out.shape[0] == n:
                plan_out[:, :] = F
            return value, it, done, OK
        if use:
            gram = hist_r @ hist_r.T
            reg = a_reg * gram.sum() + 1e-300
            for k in range(depth):
                gram[k, k] += reg
            gamma = np.linalg.solve(gram, hist_r @ R)
            step = gamma @ hist_f
            for i in range(n):
                for j in range(m):
                    X[i, j] = F[i, j] - step[i * m + j]
        else:
            X[:, :] = F
        err_prev = err if np.isfinite(err) else 0.0
        LX = 2.0 * (C1 @ X @ C2)
    return 0.0, max_iter, False, OK  # not reached: it >= max_iter finishes


@jit
def _pgd_range(
    Ms, C1s, C2s, ps, qs, alpha, eps, max_iter, tol, cfg, plans, start, stop, value, n_iter, converged, status
):
    empty = np.empty((0, 0))
    for k in range(start, stop):
        plan = plans[k] if plans.shape[0] > 0 else empty
        val, its, conv, code = _pgd_pair(
            Ms[k], C1s[k], C2s[k], ps[k], qs[k], alpha, eps, max_iter, tol, cfg, plan
        )
        value[k] = val
        n_iter[k] = its
        converged[k] = conv
        status[k] = code


def solve_pairs(
    M: np.ndarray,
    C1: np.ndarray,
    C2: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    alpha: float,
    epsilon: float,
    max_iter: int,
    tol: float,
    settings: Settings,
    *,
    return_plan: bool = False,
    threads: int | None = None,
) -> PairResults:
    """Entropic FGW for a stack of equal-shape pairs.

    Parameters
    ----------
    M : ndarray, shape (B, n, m), float64
    C1 : ndarray, shape (B, n, n), float64
    C2 : ndarray, shape (B, m, m), float64
    p : ndarray, shape (B, n), float64
        Positive weights.
    q : ndarray, shape (B, m), float64
        Positive weights, each pair's of the same mass as its ``p``.
    alpha, epsilon, max_iter, tol
        As in :func:`kernels.fgw.fgw`.
    settings : Settings
        The solver constants (:meth:`Settings.reference`).
    return_plan : bool
        Fill :attr:`PairResults.plans`.
    threads : int, optional
        Pool size (default :data:`kernels._numba.THREADS`, 0: one per CPU).

    Returns
    -------
    PairResults
        Pairs come back with ``status`` ``OK``, or ``NOT_SYMMETRIC`` / ``NOT_FINITE``
        to be solved by the reference solver.
    """
    B, n, m = M.shape
    M, C1, C2, p, q = (np.ascontiguousarray(a, dtype=np.float64) for a in (M, C1, C2, p, q))
    if C1.shape != (B, n, n) or C2.shape != (B, m, m) or p.shape != (B, n) or q.shape != (B, m):
        raise ValueError(
            f"shapes must be M (B, n, m), C1 (B, n, n), C2 (B, m, m), p (B, n), q (B, m); got "
            f"{M.shape}, {C1.shape}, {C2.shape}, {p.shape}, {q.shape}"
        )
    cfg = (
        float(settings.sinkhorn_tol),
        int(settings.sinkhorn_max_iter),
        int(settings.sinkhorn_check_every),
        int(settings.sinkhorn_failures),
        float(settings.sinkhorn_inexact),
        float(settings.absorb_at),
        int(settings.anderson_depth),
        float(settings.anderson_start),
        float(settings.anderson_restart),
        float(settings.anderson_reg),
    )
    out = PairResults.empty(B, n, m, with_plans=return_plan)
    args = (M, C1, C2, p, q, float(alpha), float(epsilon), int(max_iter), float(tol), cfg, out.plans)
    outs = (out.distance, out.n_iter, out.converged, out.status)
    tasks = [(*args, s, min(B, s + PAIRS_PER_TASK), *outs) for s in range(0, B, PAIRS_PER_TASK)]
    run_tasks(_pgd_range, tasks, threads=threads, largest_pair=n * m)
    if not return_plan:
        out.plans = None
    return out


def solve_problems(
    host: list[tuple[Any, ...]],
    rest: list[int],
    results: list[FGWResult | None],
    alpha: float,
    epsilon: float,
    max_iter: int,
    tol: float,
    return_plan: bool,
) -> dict[int, str]:
    """Solve the problems ``rest`` of a call of :func:`kernels.fgw.fgw_batch` that this
    solver can take, grouped by shape; fill their ``results``.

    Parameters
    ----------
    host : list of (M, C1, C2, p, q)
        Every problem of the call as float64 numpy arrays (``None`` weights: uniform).
    rest : list of int
        The problems to try.
    results : list of FGWResult or None
        Filled at the indices solved.
    alpha, epsilon, max_iter, tol, return_plan
        As in :func:`kernels.fgw.fgw_batch`.

    Returns
    -------
    dict
        The problems of ``rest`` left unsolved, each with the reason: shapes that do
        not agree, a weight that is not positive or masses that differ, a structure
        that is not exactly symmetric, or a value that is not finite.
    """
    handed_back: dict[int, str] = {}
    groups = shape_groups(host, rest)
    if sum(len(ks) for ks in groups.values()) < len(rest):
        grouped = {k for ks in groups.values() for k in ks}
        handed_back.update({k: BAD_SHAPES for k in rest if k not in grouped})
    if not groups:
        return handed_back
    settings = Settings.reference()
    for (n, m), members in groups.items():
        P = np.stack([or_uniform(host[k][3], n) for k in members])
        Q = np.stack([or_uniform(host[k][4], m) for k in members])
        ok = (P > 0).all(axis=1) & (Q > 0).all(axis=1)
        ok &= np.abs(P.sum(axis=1) - Q.sum(axis=1)) <= MASS_ATOL
        sel = []
        for k, good in zip(members, ok.tolist(), strict=True):
            if good:
                sel.append(k)
            else:
                handed_back[k] = NOT_POSITIVE
        if not sel:
            continue
        out = solve_pairs(
            stack([host[k][0] for k in sel], "in_M"),  # groups run one at a time
            stack([host[k][1] for k in sel], "in_C1"),
            stack([host[k][2] for k in sel], "in_C2"),
            P[ok],
            Q[ok],
            alpha,
            epsilon,
            max_iter,
            tol,
            settings,
            return_plan=return_plan,
        )
        store_compiled(results, handed_back, sel, out)
    return handed_back


def warm_up() -> None:
    """Compile the solver, or load it from the on-disk cache."""
    C = np.array([[[0.0, 1.0], [1.0, 0.0]]])
    w = np.full((1, 2), 0.5)
    solve_pairs(C, C, C, w, w, 0.5, 0.1, 3, 1e-9, Settings.reference(), threads=1)
