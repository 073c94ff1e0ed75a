r"""Exact FGW for pairs whose linear subproblems are assignments: the compiled solver.

When the first graph's weights are uniform, :math:`p = w 1` (``n`` nodes), and the
second graph's are whole multiples of the same unit, :math:`q_j = c_j w` with
:math:`\sum_j c_j = n` (equal sizes with uniform weights, :math:`c = 1`; or a graph
and its coarsening, :math:`c_j` the cluster sizes), every vertex of the transport
polytope :math:`\Pi(p, q)` sends each row's whole mass to one column: it is
:math:`w P_\sigma` for a map :math:`\sigma` that gives column ``j`` exactly
:math:`c_j` rows (transportation polytopes with integral margins have integral
vertices). POT's conditional gradient (``ot.optim.cg``, see
:mod:`kernels.fgw._exact`) then needs, per iteration, one such assignment and one
matrix product, when the structures are symmetric:

* the linear cost is :math:`(1-\alpha)M - 2\alpha L(G)`, :math:`L(G) = 2\,C_1 G C_2`:
  the gradient's constant part :math:`c_{C_1,C_2} = f_1 1^\top + 1 f_2^\top` shifts
  whole rows and columns, and every vertex takes one entry per row and :math:`c_j`
  per column, so the shift costs all of them the same; on :math:`\Pi(p, q)`,
  :math:`\langle c, G\rangle = w^2 \sum C_1^2 + q^\top C_2^{\odot 2} q` is constant;
* the new vertex :math:`G_c = w P_\sigma` gives :math:`C_1 G_c C_2 = w\,C_1 C_2[\sigma, :]`:
  one row gather and one ``n x n x m`` product; when ``m`` is small against ``n`` (a
  graph against its coarsening), :math:`w\,(P_\sigma^\top C_1)^\top C_2` instead: the
  rows of :math:`C_1` summed per column of :math:`\sigma`, then an ``n x m x m`` product;
* the gradient is affine in the plan and :math:`G \mapsto C_1 G C_2` is self-adjoint,
  so the coefficients of the line search (:mod:`kernels.fgw._linesearch`) need only
  :math:`\langle M, G_c\rangle`, :math:`\langle L(G), G_c\rangle`,
  :math:`\langle L(G_c), G_c\rangle` (sums along :math:`\sigma`) and two running
  scalars, and :math:`L(G)` is updated affinely.

The iterates, step sizes and stopping rule are POT's. The whole loop of one pair
runs as compiled code (:mod:`kernels._numba`: ``nogil``, cached on disk) and
:func:`solve_many` spreads the pairs of a batch over threads.

The assignments are solved by successive shortest augmenting paths with column
prices, Jonker-Volgenant style (Jonker & Volgenant 1987), generalised to column
capacities: Dijkstra from a free row ends at a column with room left, and a full
column is passed through its rows. Prices are carried from one CG iteration to the
next: consecutive costs differ by the change of :math:`L(G)` only, so most rows find
their column at once and the paths are short. The first iteration's cost is
:math:`(1-\alpha)M` minus a rank-one term, whose optimal prices have a closed form
(:func:`rank_one_prices`); it starts from those, tightened by one round of row and
column reduction. Any finite prices are a valid start (each search keeps the reduced
costs non-negative, and zero on assigned edges), so they change the speed, never the
optimality; on exact ties, as any exact solver, another optimal vertex may be picked.

:func:`solve_problems` is the entry point of :func:`kernels.fgw.fgw_batch`: it picks
the pairs this solver can take, stacks them by shape and hands the others back.

References
----------
Jonker, Volgenant. "A shortest augmenting path algorithm for dense and sparse linear
assignment problems", Computing 38, 1987.
Vayer, Chapel, Flamary, Tavenard, Courty. "Optimal Transport for structured data with
application on graphs", ICML 2019.
Flamary et al. "POT: Python Optimal Transport", JMLR 2021 (``ot.optim.cg``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kernels._numba import all_finite, is_symmetric, jit, jit_reassoc, run_tasks
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
from kernels.fgw._linesearch import solve_1d_linesearch_quad

PAIRS_PER_TASK = 16
"""Pairs a pool thread takes at a time: small enough to balance pairs of uneven cost."""

CAPACITY_RTOL = 1e-12
"""How close (relative) each target weight of an ``n x m`` pair (``m < n``) must be to
a whole multiple of the uniform source weight for the pair to be solved as an
assignment with column capacities: summed cluster weights of a coarsening differ from
the multiple by round-off only, and the pair is then solved with the exact multiple
(a relative change of the value of the same order)."""

NOT_ASSIGNMENT = (
    "its weights do not make the linear subproblems assignments (the compiled exact path needs "
    "uniform p and q = p when n == m, or q whole multiples of p's entries when m < n)"
)
MORE_TARGET_NODES = "its second graph has more nodes than the first (the compiled exact path needs m <= n)"
BAD_SHAPES = "its arrays' shapes do not agree"


@jit
def _find_path(cost, start_i, cap, count, first, slots, v, pred, order, d, settled):
    """Dijkstra from free row ``start_i`` over the reduced costs ``cost - v`` to the
    nearest column with room left (``count < cap``); a full column is passed through
    each of its rows (``slots[first[j]:first[j] + count[j]]``). Lowers the prices of
    the columns settled before the end so reduced costs stay non-negative. Returns
    the end column, or -1 when there is none (non-finite costs).

    Dense passes over all columns, settled ones masked by ``settled[j] = inf``
    (added, so the relaxation loop has no branch and vectorises) rather than scan
    lists of the unsettled columns, whose swaps and indirect loads cost more than
    the settled columns they skip."""
    m = cost.shape[1]
    mind = np.inf
    for j in range(m):
        pred[j] = start_i
        d[j] = cost[start_i, j] - v[j]
        settled[j] = 0.0
        mind = min(mind, d[j])
    n_done = 0  # order[:n_done]: the settled columns
    while True:
        if not mind < np.inf:
            return -1
        # settle every column at the smallest distance, unless one of them has room
        lo = n_done
        final_j = -1
        for j in range(m):
            if d[j] + settled[j] == mind:
                if count[j] < cap[j]:
                    final_j = j
                    break
                order[n_done] = j
                n_done += 1
        if final_j != -1:
            n_done = lo  # (those at distance mind would change price by 0)
            break
        for k in range(lo, n_done):
            settled[order[k]] = np.inf
        # relax the other columns through the rows of the newly settled ones
        for k in range(lo, n_done):
            j = order[k]
            for s in range(first[j], first[j] + count[j]):
                i = slots[s]
                h = cost[i, j] - v[j] - mind
                row = cost[i]
                for jj in range(m):
                    cred = row[jj] - v[jj] - h + settled[jj]
                    dj = d[jj]
                    d[jj] = min(cred, dj)
                    pred[jj] = i if cred < dj else pred[jj]
        mind = np.inf
        for j in range(m):
            mind = min(mind, d[j] + settled[j])
    for k in range(n_done):
        j = order[k]
        v[j] += d[j] - mind
    return final_j


@jit
def _assign(cost, cap, v, x, count, first, slots, pos, pred, order, d, settled):
    """Optimal assignment of the rows of ``cost`` (``n x m``) to columns, column ``j``
    taking ``cap[j]`` rows (``sum(cap) == n``), from the column prices ``v`` (updated
    to optimal ones). Row ``i`` goes to column ``x[i]``. Returns False when no
    augmenting path exists (non-finite costs)."""
    n, m = cost.shape
    acc = 0
    for j in range(m):
        first[j] = acc
        count[j] = 0
        acc += cap[j]
    for i in range(n):
        x[i] = -1
    for start_i in range(n):
        j = _find_path(cost, start_i, cap, count, first, slots, v, pred, order, d, settled)
        if j < 0:
            return False
        # augment back along the path: each row moves into the slot its successor left
        slot = first[j] + count[j]
        count[j] += 1
        for _ in range(n + 1):
            i = pred[j]
            old, old_slot = x[i], pos[i]
            slots[slot] = i
            pos[i] = slot
            x[i] = j
            if i == start_i:
                break
            j, slot = old, old_slot
        else:
            return False
    return True


@jit
def rank_one_prices(a, b, beta, cap, v):
    r"""Optimal column prices for the rank-one costs :math:`-\beta a_i b_j`, with capacities.

    Parameters
    ----------
    a : ndarray, shape (n,), float64
    b : ndarray, shape (m,), float64
    beta : float
        Non-negative.
    cap : ndarray, shape (m,), int64
        Rows column ``j`` takes, summing to ``n``.
    v : ndarray, shape (m,), float64
        Overwritten with the prices.

    Notes
    -----
    Filling the columns in increasing ``b`` with the rows in increasing ``a`` is
    optimal (rearrangement inequality) and the costs are Monge along both orders, so
    the price steps by :math:`-\beta\, a_{\mathrm{first}} (b_{(k)} - b_{(k-1)})`,
    :math:`a_{\mathrm{first}}` the smallest ``a`` among column ``(k)``'s rows. This is
    the first CG iteration's cost up to :math:`(1-\alpha)M`.
    """
    ia = np.argsort(a, kind="mergesort")
    jb = np.argsort(b, kind="mergesort")
    acc = 0.0
    prev = b[jb[0]]
    row = 0
    for k in range(b.shape[0]):
        j = jb[k]
        acc -= beta * a[ia[min(row, a.shape[0] - 1)]] * (b[j] - prev)
        prev = b[j]
        v[j] = acc
        row += cap[j]


@jit_reassoc
def _row_sums(C):
    """``C 1`` and ``sum(C**2)`` in one pass, the sums reassociated (vectorised)."""
    n = C.shape[0]
    rows = np.empty(n)
    total_sq = 0.0
    for i in range(n):
        acc = 0.0
        acc_sq = 0.0
        for j in range(C.shape[1]):
            acc += C[i, j]
            acc_sq += C[i, j] * C[i, j]
        rows[i] = acc
        total_sq += acc_sq
    return rows, total_sq


@jit
def _tighten_prices(cost, v, u):
    """One round of dual coordinate ascent: row reduction ``u_i = min_j cost_ij - v_j``,
    then column reduction ``v_j = min_i cost_ij - u_i``. Every column then has a tight
    row, which spares the shortest-path searches many conflicts."""
    n, m = cost.shape
    for i in range(n):
        low = np.inf
        for j in range(m):
            if cost[i, j] - v[j] < low:
                low = cost[i, j] - v[j]
        u[i] = low
    for j in range(m):
        low = np.inf
        for i in range(n):
            if cost[i, j] - u[i] < low:
                low = cost[i, j] - u[i]
        v[j] = low


@jit
def _cg_pair(M, C1, C2, w, cap, alpha, max_iter, tol, plan, work, rows, cols, c1_checked):
    """POT's conditional gradient for one pair (module docstring). Returns
    (distance, n_iter, converged, status); fills ``plan`` unless it is empty.
    ``work`` ``(5, n, m)``, ``rows`` ``(4, n)`` int64, ``cols`` ``(4, m)`` int64: scratch
    kept across the pairs of a task (fresh buffers page-fault, which serialises
    threads). ``c1_checked``: ``C1`` is already known finite and symmetric."""
    n, m = M.shape
    if not (all_finite(M) and all_finite(C2) and (c1_checked or all_finite(C1))):
        return 0.0, 0, False, NOT_FINITE
    if not (is_symmetric(C2) and (c1_checked or is_symmetric(C1))):
        return 0.0, 0, False, NOT_SYMMETRIC
    want_plan = plan.shape[0] == n
    Mlin, K, Kc, Mi, Cs = work
    # C1 Gc C2 with Gc = w S (S the 0/1 matrix of sigma): C1 C2[sigma, :] costs n*n*m
    # multiply-adds; (S^T C1)^T C2 costs n*n adds (C1's rows summed per column of
    # sigma) and n*m*m multiply-adds, less when m is small against n (a coarsening)
    grouped = n + m * m < n * m
    rows_by_col = Cs.reshape(m, n)  # S^T C1, in the gather's buffer
    sigma, sigma_prev, slots, pos = rows[0], rows[1], rows[2], rows[3]
    count, first, pred, order = cols[0], cols[1], cols[2], cols[3]
    d = np.empty(m)
    settled = np.empty(m)
    v = np.empty(m)
    u = np.empty(n)
    q = w * cap.astype(np.float64)
    for i in range(n):
        for j in range(m):
            Mlin[i, j] = (1.0 - alpha) * M[i, j]
    r1, f1 = _row_sums(C1)  # C1 1, sum C1^2
    b = C2 @ q  # C2 q
    f2 = 0.0  # q^T C2^2 q
    for j in range(m):
        for k in range(m):
            f2 += q[j] * C2[j, k] * C2[j, k] * q[k]
    s_const = w * w * f1 + f2  # <constC, G>, any G in Pi(p, q)
    s_m = w * (Mlin @ q).sum()  # <Mlin, p q^T>
    s_l = 2.0 * w * r1.sum() * (q @ b) * w  # <L(G), G> at G = p q^T
    # K = C1 G C2 / w, from C1 (p q^T) C2 = w (C1 1)(C2 q)^T
    for i in range(n):
        for j in range(m):
            K[i, j] = r1[i] * b[j]
    cost = s_m + alpha * (s_const - s_l)
    if not np.isfinite(cost):  # finite inputs can still overflow: the general path decides
        return cost, 0, False, NOT_FINITE
    if want_plan:
        for i in range(n):
            plan[i, :] = w * q
    vertex = False  # G is exactly w P_sigma_prev (last step t = 1)
    scale = -4.0 * alpha * w
    # the first cost is Mlin - 4 alpha w r1 b^T: start from the rank-one term's prices
    rank_one_prices(r1, b, -scale, cap, v)
    for it in range(1, max_iter + 1):
        for i in range(n):
            for j in range(m):
                Mi[i, j] = Mlin[i, j] + scale * K[i, j]
        if it == 1:  # (later iterations' carried prices gained nothing from it)
            _tighten_prices(Mi, v, u)
        if not _assign(Mi, cap, v, sigma, count, first, slots, pos, pred, order, d, settled):
            return cost, it, False, NOT_FINITE
        if vertex:
            same = True
            for i in range(n):
                if sigma[i] != sigma_prev[i]:
                    same = False
                    break
            if same:  # the last vertex is optimal again: dG = 0, POT's step is 0 too
                return cost, it, True, OK
        m_c = 0.0
        xs = 0.0
        for i in range(n):
            m_c += Mlin[i, sigma[i]]
            xs += K[i, sigma[i]]
        m_c *= w  # <Mlin, Gc>
        xs *= 2.0 * w * w  # <L(G), Gc>
        # Kc = C1 Gc C2 / w, into kept buffers (no allocation per step)
        if grouped:
            rows_by_col[:] = 0.0
            for i in range(n):  # C1 symmetric: its row i is its column i
                col = sigma[i]
                for k in range(n):  # (a slice expression would allocate a temporary)
                    rows_by_col[col, k] += C1[i, k]
            np.dot(rows_by_col.T, C2, Kc)
        else:
            for i in range(n):
                Cs[i, :] = C2[sigma[i], :]
            np.dot(C1, Cs, Kc)
        ys = 0.0
        for i in range(n):
            ys += Kc[i, sigma[i]]
        ys *= 2.0 * w * w  # <L(Gc), Gc>
        a = -alpha * (ys - 2.0 * xs + s_l)  # -alpha <L(dG), dG>
        b_ls = (m_c - s_m) - 2.0 * alpha * (xs - s_l)  # <Mlin, dG> - 2 alpha <L(dG), G>
        t = solve_1d_linesearch_quad(a, b_ls)
        old = cost
        cost = cost + a * t * t + b_ls * t
        if not np.isfinite(cost):
            return cost, it, False, NOT_FINITE
        s_m = s_m + t * (m_c - s_m)
        s_l = s_l + 2.0 * t * (xs - s_l) + t * t * (ys - 2.0 * xs + s_l)
        vertex = t == 1.0
        if vertex:
            K, Kc = Kc, K
        else:
            for i in range(n):
                for j in range(m):
                    K[i, j] += t * (Kc[i, j] - K[i, j])
        if want_plan:
            for i in range(n):
                for j in range(m):
                    plan[i, j] *= 1.0 - t
                plan[i, sigma[i]] += t * w
        sigma_prev[:] = sigma
        delta = abs(cost - old)
        if delta < tol or (cost != 0.0 and delta / abs(cost) < tol):
            return cost, it, True, OK
    return cost, max_iter, False, OK


@jit
def _staggered(count, n, m):
    """``count`` scratch ``n x m`` arrays in one allocation, their starts staggered by
    a few cache lines: at a power-of-two ``n * m`` plain back-to-back arrays share cache
    sets (and 4K-alias) entry for entry, which slows the elementwise loops."""
    stride = n * m + 40
    flat = np.empty(count * stride)
    return [flat[k * stride : k * stride + n * m].reshape(n, m) for k in range(count)]


@jit
def _cg_range(
    M,
    C1,
    C2,
    w,
    cap,
    c1_checked,
    alpha,
    max_iter,
    tol,
    plans,
    start,
    stop,
    distance,
    n_iter,
    converged,
    status,
):
    """:func:`_cg_pair` for pairs ``start`` to ``stop`` of the stacks (one scratch
    allocation for all of them)."""
    n, m = M.shape[1], M.shape[2]
    work = _staggered(5, n, m)
    rows = np.zeros((4, n), dtype=np.int64)
    cols = np.empty((4, m), dtype=np.int64)
    empty = np.empty((0, 0))
    for k in range(start, stop):
        plan = plans[k] if plans.shape[0] > 0 else empty
        dist, its, conv, code = _cg_pair(
            M[k], C1[k], C2[k], w[k], cap[k], alpha, max_iter, tol, plan, work, rows, cols, c1_checked[k]
        )
        distance[k] = dist
        n_iter[k] = its
        converged[k] = conv
        status[k] = code


@dataclass
class PairStack:
    """One group of pairs of equal shapes for :func:`solve_many`.

    Attributes
    ----------
    M : ndarray, shape (B, n, m), float64
    C1 : ndarray, shape (B, n, n), float64
    C2 : ndarray, shape (B, m, m), float64
    w : ndarray, shape (B,), float64
        Each pair's uniform source weight, ``p = w 1``.
    cap : ndarray, shape (B, m), int64, or None
        Positive integers summing to ``n`` per pair, ``q = w cap``; ``None`` for
        ``n == m`` and ``q = p``.
    """

    M: np.ndarray
    C1: np.ndarray
    C2: np.ndarray
    w: np.ndarray
    cap: np.ndarray | None = None


def solve_many(
    stacks: list[PairStack],
    alpha: float,
    max_iter: int,
    tol: float,
    *,
    return_plan: bool = False,
    threads: int | None = None,
) -> list[PairResults]:
    """Exact FGW (POT's CG) for groups of pairs whose subproblems are assignments.

    Parameters
    ----------
    stacks : list of PairStack
    alpha, max_iter, tol
        As in :func:`kernels.fgw.fgw`.
    return_plan : bool
        Fill :attr:`PairResults.plans`.
    threads : int, optional
        Pool size (default :data:`kernels._numba.THREADS`, 0: one per CPU).

    Returns
    -------
    list of PairResults
        One per stack. Pairs come back with ``status`` ``OK``, or ``NOT_SYMMETRIC`` /
        ``NOT_FINITE`` to be solved another way.

    Notes
    -----
    All pairs of all groups are spread over one pool, :data:`PAIRS_PER_TASK` at a
    time, so a few large pairs of different shapes (the levels of an RD curve) run
    side by side too (:func:`kernels._numba.run_tasks`).
    """
    tasks = []
    outs = []
    inputs = []
    for st in stacks:
        B, n, m = st.M.shape
        M, C1, C2, w = (np.ascontiguousarray(a, dtype=np.float64) for a in (st.M, st.C1, st.C2, st.w))
        if st.cap is None:
            cap = np.ones((B, m), dtype=np.int64)
        else:
            cap = np.ascontiguousarray(st.cap, dtype=np.int64)
        if C1.shape != (B, n, n) or C2.shape != (B, m, m) or w.shape != (B,):
            raise ValueError(
                f"shapes must be M (B, n, m), C1 (B, n, n), C2 (B, m, m), w (B,); got "
                f"{M.shape}, {C1.shape}, {C2.shape}, {w.shape}"
            )
        if B and (cap.shape != (B, m) or (cap <= 0).any() or (cap.sum(axis=1) != n).any()):
            raise ValueError("cap must be (B, m) positive integers summing to n per pair")
        inputs.append((M, C1, C2, w, cap))
    for (M, C1, C2, w, cap), c1_checked in zip(inputs, shared_structures_checked(inputs), strict=True):
        B, n, m = M.shape
        res = PairResults.empty(B, n, m, with_plans=return_plan)
        args = (M, C1, C2, w, cap, c1_checked, float(alpha), int(max_iter), float(tol), res.plans)
        for s in range(0, B, PAIRS_PER_TASK):
            tasks.append(
                (*args, s, min(B, s + PAIRS_PER_TASK), res.distance, res.n_iter, res.converged, res.status)
            )
        outs.append(res)
    largest = max((st.M.shape[1] * st.M.shape[2] for st in stacks), default=0)
    run_tasks(_cg_range, tasks, threads=threads, largest_pair=largest)
    if not return_plan:
        for res in outs:
            res.plans = None
    return outs


def shared_structures_checked(inputs: list[tuple[np.ndarray, ...]]) -> list[np.ndarray]:
    """Per group, per pair: whether its ``C1`` is already known finite and symmetric.

    Parameters
    ----------
    inputs : list of (M, C1, C2, w, cap)
        The groups' float64 stacks, as :func:`solve_many` prepares them.

    Returns
    -------
    list of ndarray, shapes (B_g,), bool

    Notes
    -----
    The levels of an RD curve are single-pair groups that all share the graph's
    structure (views of one array); it is checked once here instead of once per level
    inside the compiled loop. Other pairs check their own structures, in the pool's
    threads.
    """
    keys = [
        (C1.__array_interface__["data"][0], C1.shape, C1.strides) if C1.shape[0] == 1 else None
        for _, C1, *_ in inputs
    ]
    verdicts: dict[tuple[Any, ...], bool] = {}
    out = []
    for (_, C1, *_), key in zip(inputs, keys, strict=True):
        known = False
        if key is not None and keys.count(key) > 1:
            if key not in verdicts:
                verdicts[key] = bool(all_finite(C1[0]) and is_symmetric(C1[0]))
            known = verdicts[key]
        out.append(np.full(C1.shape[0], known))
    return out


def solve_pairs(
    M: np.ndarray,
    C1: np.ndarray,
    C2: np.ndarray,
    w: np.ndarray,
    cap: np.ndarray | None,
    alpha: float,
    max_iter: int,
    tol: float,
    *,
    return_plan: bool = False,
    threads: int | None = None,
) -> PairResults:
    """:func:`solve_many` for one group of pairs (see :class:`PairStack` for the arrays)."""
    return solve_many(
        [PairStack(M, C1, C2, w, cap)], alpha, max_iter, tol, return_plan=return_plan, threads=threads
    )[0]


def assign(cost: np.ndarray, cap: np.ndarray | None = None, prices: np.ndarray | None = None) -> np.ndarray:
    """Optimal assignment of the rows of a cost matrix to its columns, with capacities.

    Parameters
    ----------
    cost : ndarray, shape (n, m)
    cap : ndarray, shape (m,), int, optional
        Rows column ``j`` takes (non-negative, summing to ``n``); one each by default
        (``n == m``).
    prices : ndarray, shape (m,), float64, optional
        Column prices to start from, updated in place to optimal ones; zeros by default.

    Returns
    -------
    ndarray, shape (n,), int64
        Row ``i`` goes to column ``out[i]``.

    Raises
    ------
    ValueError
        For non-finite costs or prices, or capacities that do not fit.
    """
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    n, m = cost.shape
    cap = np.ones(m, dtype=np.int64) if cap is None else np.ascontiguousarray(cap, dtype=np.int64)
    if cap.shape != (m,) or (cap < 0).any() or cap.sum() != n:
        raise ValueError(f"cap must be {m} non-negative integers summing to {n}")
    if not np.isfinite(cost).all():
        raise ValueError("no optimal assignment: the costs must be finite")
    if prices is not None and (prices.shape != (m,) or prices.dtype != np.float64):
        raise ValueError(f"prices must be a float64 array of shape ({m},)")
    if prices is not None and not np.isfinite(prices).all():
        raise ValueError("prices must be finite")
    v = prices if prices is not None else np.zeros(m)
    x, slots, pos = (np.empty(n, dtype=np.int64) for _ in range(3))
    count, first, pred, cols = (np.empty(m, dtype=np.int64) for _ in range(4))
    if n and not _assign(cost, cap, v, x, count, first, slots, pos, pred, cols, np.empty(m), np.empty(m)):
        raise ValueError("no optimal assignment: the costs must be finite")
    return x


# --------------------------------------------------------------------------- entry from fgw_batch


def assignment_capacities(
    ps: list[Any], qs: list[Any], groups: dict[tuple[int, int], list[int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which pairs' linear subproblems are assignments, and with which capacities.

    Parameters
    ----------
    ps, qs : list of ndarray or None
        The weights (``None``: uniform) of the pairs of ``groups``, group after group.
    groups : dict
        ``(n, m) -> pair indices``, in the order of ``ps`` and ``qs``.

    Returns
    -------
    w : ndarray, shape (P,), float64
        Each pair's unit weight, ``p = w 1``.
    ok : ndarray, shape (P,), bool
        Whether the pair qualifies: ``p`` uniform and positive, and ``q = p`` exactly
        when ``n == m``, or ``q`` whole multiples of ``w`` within
        :data:`CAPACITY_RTOL` summing to ``n`` when ``m < n``.
    cap : ndarray, shape (sum of m,), int64
        The capacities ``q / w`` of all pairs, concatenated (1 when ``n == m``).

    Notes
    -----
    One set of numpy calls on the concatenated weights of all groups, not one per group.
    """
    ns = np.array([n for (n, _), ks in groups.items() for _ in ks])
    ms = np.array([m for (_, m), ks in groups.items() for _ in ks])
    p = np.concatenate([or_uniform(a, n) for a, n in zip(ps, ns.tolist(), strict=True)])
    q = np.concatenate([or_uniform(a, m) for a, m in zip(qs, ms.tolist(), strict=True)])
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


def solve_problems(
    host: list[tuple[Any, ...]],
    rest: list[int],
    results: list[FGWResult | None],
    alpha: float,
    max_iter: int,
    tol: float,
    return_plan: bool,
) -> dict[int, str]:
    """Solve the problems ``rest`` of a call of :func:`kernels.fgw.fgw_batch` that this
    solver can take; fill their ``results``.

    Parameters
    ----------
    host : list of (M, C1, C2, p, q)
        Every problem of the call as float64 numpy arrays (``None`` weights: uniform).
    rest : list of int
        The problems to try.
    results : list of FGWResult or None
        Filled at the indices solved.
    alpha, max_iter, tol, return_plan
        As in :func:`kernels.fgw.fgw_batch`.

    Returns
    -------
    dict
        The problems of ``rest`` left unsolved, each with the reason: shapes that do
        not agree, ``m > n``, weights that do not make the subproblems assignments
        (see :func:`assignment_capacities`), a structure that is not exactly
        symmetric, or a value that is not finite.
    """
    handed_back: dict[int, str] = {}
    groups = {}
    for (n, m), ks in shape_groups(host, rest).items():
        if m <= n:
            groups[(n, m)] = ks
        else:
            handed_back.update(dict.fromkeys(ks, MORE_TARGET_NODES))
    if len(handed_back) + sum(len(ks) for ks in groups.values()) < len(rest):
        grouped = {k for ks in groups.values() for k in ks}
        handed_back.update({k: BAD_SHAPES for k in rest if k not in grouped and k not in handed_back})
    if not groups:
        return handed_back
    ordered = [k for ks in groups.values() for k in ks]  # each group's pairs together
    w, ok, cap = assignment_capacities([host[k][3] for k in ordered], [host[k][4] for k in ordered], groups)
    chosen: list[list[int]] = []
    stacks: list[PairStack] = []
    at = cap_at = 0
    for slot, ((_, m), members) in enumerate(groups.items()):
        B = len(members)
        good = ok[at : at + B]
        sel = []
        for k, hit in zip(members, good.tolist(), strict=True):
            if hit:
                sel.append(k)
            else:
                handed_back[k] = NOT_ASSIGNMENT
        if sel:
            chosen.append(sel)
            stacks.append(
                PairStack(
                    # all groups' stacks live at once: only the first reuses scratch buffers,
                    # so many shapes do not leave many kept buffers behind
                    M=stack([host[k][0] for k in sel], "in_M" if slot == 0 else None),
                    C1=stack([host[k][1] for k in sel], "in_C1" if slot == 0 else None),
                    C2=stack([host[k][2] for k in sel], "in_C2" if slot == 0 else None),
                    w=w[at : at + B][good],
                    cap=cap[cap_at : cap_at + B * m].reshape(B, m)[good],
                )
            )
        at += B
        cap_at += B * m
    outs = solve_many(stacks, alpha, max_iter, tol, return_plan=return_plan)
    for sel, out in zip(chosen, outs, strict=True):
        store_compiled(results, handed_back, sel, out)
    return handed_back


def warm_up() -> None:
    """Compile the solver (square and with capacities) and :func:`assign`, or load them
    from the on-disk cache."""
    C = np.array([[[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]]])
    solve_pairs(C, C, C, np.array([1.0 / 3.0]), None, 0.5, 10, 1e-9, threads=1)
    solve_pairs(
        C[:, :, :2], C, C[:, :2, :2], np.array([1.0 / 3.0]), np.array([[2, 1]]), 0.5, 10, 1e-9, threads=1
    )
    assign(C[0])
