r"""Exact FGW by conditional gradient: the reference solvers.

POT's ``ot.gromov.fused_gromov_wasserstein2(..., loss_fun="square_loss")``: conditional
gradient (Frank-Wolfe) from :math:`G_0 = p q^\top`,

.. math::
    G_c = \arg\min_{T \in \Pi(p, q)} \langle (1-\alpha) M + \alpha \nabla_G \mathrm{GW}(G_k), T\rangle,
    \qquad G_{k+1} = G_k + t_k (G_c - G_k),

with an exact linear OT subproblem per iteration and the exact step
:math:`t_k` (:mod:`kernels.fgw._linesearch`), stopping when the objective's relative
or absolute change falls under ``tol``. Two implementations:

:func:`solve_batch`
    Any array-API namespace, a padded batch of pairs at once. The tensor product
    :math:`L(G)` (:mod:`kernels.fgw._square_loss`) is kept up to date affinely,
    :math:`L(G + t\Delta) = L(G) + t\,L(\Delta)`, so each iteration costs one tensor
    product instead of POT's two. The linear subproblems are solved on the host
    (:func:`kernels.backend.solve_linear_ot_batch`: a linear assignment for uniform
    weights and ``n == m``, POT's network simplex otherwise).
:func:`cg_pot_order`
    One pair on the host in POT's own sequence of floating-point operations and
    POT's network simplex, for pairs whose linear subproblems are riddled with exact
    ties (:mod:`kernels.fgw._ties`): which optimal vertex a tie resolves to decides
    the local minimum CG reaches, and only bit-identical costs resolve it as POT does.

Both return the same iterates as POT where the subproblems have unique optima.

References
----------
Vayer, Chapel, Flamary, Tavenard, Courty. "Optimal Transport for structured data with
application on graphs", ICML 2019.
Peyré, Cuturi, Solomon. "Gromov-Wasserstein averaging of kernel and distance
matrices", ICML 2016.
Flamary et al. "POT: Python Optimal Transport", JMLR 2021 (``ot.gromov``, ``ot.optim.cg``).
"""

from __future__ import annotations

import numpy as np

from kernels import backend as bk
from kernels.fgw._batch import Batch, FGWResult, store_finished
from kernels.fgw._linesearch import solve_1d_linesearch_quad, solve_1d_linesearch_quad_batch
from kernels.fgw._square_loss import Structure, bdot
from kernels.fgw._validation import SYMMETRY_ATOL


def solve_batch(b: Batch, alpha: float, max_iter: int, tol: float, return_plan: bool) -> list[FGWResult]:
    r"""Conditional gradient for a padded batch, POT's ``ot.optim.cg`` per pair.

    Parameters
    ----------
    b : Batch
        The pairs, padded to ``(B, N, M)`` in the namespace ``b.xp``, float32 or float64.
    alpha : float
        Trade-off in [0, 1].
    max_iter : int
        Outer iteration cap.
    tol : float
        Stop a pair when :math:`|\Delta E| < \mathrm{tol}` or
        :math:`|\Delta E| / |E| < \mathrm{tol}`.
    return_plan : bool
        Keep the plans (in ``b.xp``, without padding).

    Returns
    -------
    list of FGWResult
        In the order of the batch. Finished pairs leave the working set; the
        objective is carried in float64 on the host.
    """
    xp = b.xp
    st = Structure(b)
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
    cost = bk.to_numpy(bdot(xp, Mlin, G) + alpha * bdot(xp, st.constC - LG, G))
    cost = np.array(cost, dtype=np.float64)

    active = np.arange(B)  # batch index of each working row
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
        a_ls = -alpha * bk.to_numpy(bdot(xp, dot, dG))
        if st.symmetric:
            b_ls = bk.to_numpy(bdot(xp, Mlin, dG) - 2.0 * alpha * bdot(xp, dot, G))
        else:
            b_ls = bk.to_numpy(bdot(xp, Mlin, dG) - alpha * (bdot(xp, dot, G) + bdot(xp, LG, dG)))
        a_ls = np.ascontiguousarray(a_ls, dtype=np.float64)
        b_ls = np.ascontiguousarray(b_ls, dtype=np.float64)
        t = solve_1d_linesearch_quad_batch(a_ls, b_ls)
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
            store_finished(results, b, active, rows, cost, G if return_plan else None, it, done)
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


def cg_pot_order(
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

    Repeats the arithmetic of ``ot.gromov.init_matrix``, ``gwggrad``,
    ``solve_gromov_linesearch`` and ``ot.optim.generic_conditional_gradient`` (two
    dense tensor products per iteration, POT's network simplex, no assignment
    shortcut), so that exact ties in the linear subproblems resolve to the vertices
    POT's resolve to.

    Parameters
    ----------
    M : ndarray, shape (n, m), float64
    C1 : ndarray, shape (n, n), float64
    C2 : ndarray, shape (m, m), float64
    p : ndarray, shape (n,), float64
    q : ndarray, shape (m,), float64
    alpha, max_iter, tol
        As in :func:`solve_batch`.

    Returns
    -------
    distance : float
    plan : ndarray, shape (n, m), float64
    n_iter : int
    converged : bool
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
        t = solve_1d_linesearch_quad(a, b)
        cost = cost + a * (t**2) + b * t
        G = G + t * dG
        delta = abs(cost - old)
        relative = delta / abs(cost) if cost != 0.0 else np.nan
        if relative < tol or delta < tol:
            return float(cost), G, it, True
    return float(cost), G, max_iter, False
