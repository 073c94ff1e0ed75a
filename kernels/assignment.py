r"""Compiled host solver for exact FGW pairs whose linear subproblems are assignments.

When the first graph's weights are uniform, :math:`p = w 1` (``n`` nodes), and the
second graph's are whole multiples of the same unit, :math:`q_j = c_j w` with
:math:`\sum_j c_j = n` (equal sizes with uniform weights, :math:`c = 1`; or a graph
and its coarsening, :math:`c_j` the cluster sizes), every vertex of the transport
polytope :math:`\Pi(p, q)` sends each row's whole mass to one column: it is
:math:`w P_\sigma` for a map :math:`\sigma` that gives column ``j`` exactly
:math:`c_j` rows (transportation polytopes with integral margins have integral
vertices). POT's conditional gradient (``ot.optim.cg``) then needs, per iteration,
one such assignment and one matrix product, when the structures are symmetric:

* the linear cost is :math:`(1-\alpha)M - 2\alpha L(G)`, :math:`L(G) = 2\,C_1 G C_2`: the gradient's constant
  part :math:`c_{C_1,C_2} = f_1 1^\top + 1 f_2^\top` shifts whole rows and columns, and
  every vertex takes one entry per row and :math:`c_j` per column, so the shift costs
  all of them the same; on :math:`\Pi(p, q)`,
  :math:`\langle c, G\rangle = w^2 \sum C_1^2 + q^\top C_2^{\odot 2} q` is constant;
* the new vertex :math:`G_c = w P_\sigma` gives :math:`C_1 G_c C_2 = w\,C_1 C_2[\sigma, :]`:
  one row gather and one ``n x n x m`` product; when ``m`` is small against ``n`` (a
  graph against its coarsening), :math:`w\,(P_\sigma^\top C_1)^\top C_2` instead: the
  rows of :math:`C_1` summed per column of :math:`\sigma`, then an ``n x m x m`` product;
* the gradient is affine in the plan and :math:`G \mapsto C_1 G C_2` is self-adjoint,
  so the closed-form line search needs only :math:`\langle M, G_c\rangle`,
  :math:`\langle L(G), G_c\rangle`, :math:`\langle L(G_c), G_c\rangle` (sums along
  :math:`\sigma`) and two running scalars, and :math:`L(G)` is updated affinely.

The iterates, step sizes and stopping rule are POT's; the whole loop of one pair runs
as compiled code (numba, ``nogil``) and :func:`solve_many` spreads the pairs of a
batch over threads. At ``n = 32`` a numpy loop over a batch spent most of its time in
passes over memory and interpreter overhead, not in arithmetic.

The assignments are solved by successive shortest augmenting paths with column
prices, Jonker-Volgenant style (Jonker & Volgenant 1987), generalised to column
capacities: Dijkstra from a free row ends at a column with room left, and a full
column is passed through its rows. Each Dijkstra step makes dense passes over all
columns (settled ones masked), which beat the scan lists of the ``lap`` package's
dense solver by 1.3-1.5x here. Prices are carried from one CG iteration to the
next: consecutive costs differ by the change of :math:`L(G)` only, so most rows find
their column at once and the paths are short. The first iteration's cost is
:math:`(1-\alpha)M` minus a rank-one term, whose optimal prices have a closed form
(:func:`_rank_one_prices`); it starts from those, tightened by one round of row and
column reduction. Any finite prices are a valid start (each search keeps the reduced
costs non-negative, and zero on assigned edges), so they change the speed, never the
optimality; on exact ties, as any exact solver, another optimal vertex may be picked.
JV's augmenting row reduction is left out: on CG's structured costs it displaced
rows back and forth and doubled the solve time.

Compiled code is cached on disk next to this module (``cache=True``): the first
process compiles for about 15 s, later ones load in well under a second
(``python -m kernels.warmup`` fills the cache ahead of use).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

THREADS = 0
"""Worker threads for :func:`solve_many` (0: one per CPU this process may use)."""

POOL_MAX_ENTRIES = 64 * 64
"""Largest pair (``n * m``) that :func:`solve_many` spreads over its thread pool.
Larger pairs run one after the other in the calling thread, their products on BLAS's
own threads: after a threaded product OpenBLAS's idle threads spin for a while and
take a core from the pool (the five 256-node levels of an RD curve, right after the
coarsening's products, ran 1.3x slower on two pool threads than on one thread)."""

PAIRS_PER_TASK = 16
"""Pairs a thread takes at a time: small enough to balance pairs of uneven cost."""

OK, NOT_FINITE, NOT_SYMMETRIC = 0, 1, 2
"""Per-pair status of :func:`solve_many`: solved; an input holds NaN or infinity (or,
as a safety net, the assignment found no augmenting path); a structure is not exactly
symmetric (the algebra above needs it)."""

jit = numba.njit(cache=True, nogil=True, error_model="numpy")
"""Compiled, cached, GIL released; division by zero gives inf/NaN as in numpy (numba's
default raises ZeroDivisionError, which would abort the caller's whole batch)."""


@dataclass
class PairResults:
    """Per-pair outcomes of :func:`solve_pairs` (arrays of length ``B``)."""

    distance: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    status: np.ndarray
    plans: np.ndarray | None


@jit
def _find_path(cost, start_i, cap, count, first, slots, v, pred, order, d, settled):
    """Dijkstra from free row ``start_i`` over the reduced costs ``cost - v`` to the
    nearest column with room left (``count < cap``); a full column is passed through
    each of its rows (``slots[first[j]:first[j] + count[j]]``). Lowers the prices of
    the columns settled before the end so reduced costs stay non-negative. Returns
    the end column, or -1 when there is none (non-finite costs).

    Dense passes over all columns, settled ones masked by ``settled[j] = inf``
    (added, so no branch): 1.3-1.5x faster at n = 32 to 256 than scan lists of
    the unsettled columns, whose swaps and indirect loads cost more than the
    settled columns they skip."""
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
def _rank_one_prices(a, b, beta, cap, v):
    """Optimal column prices for the costs ``-beta a_i b_j`` (``beta >= 0``), column
    ``j`` taking ``cap[j]`` rows: filling the columns in increasing ``b`` with the rows
    in increasing ``a`` is optimal (rearrangement inequality), the costs are Monge
    along both orders, so the price steps by ``-beta a_first (b_(k) - b_(k-1))``,
    ``a_first`` the smallest ``a`` of column ``(k)``'s rows."""
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


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "nsz"})
def _row_sums(C):
    """``C 1`` and ``sum(C**2)`` in one pass; reassociated (vectorised) sums: numba's
    ``C.sum(axis=1)`` and ``(C * C).sum()`` took 20x longer at n = 256."""
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
    row, which spares the shortest-path searches many conflicts: on top of the
    rank-one prices of the first iteration, 20 % off the first solve at n = 32."""
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


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "nsz"})
def _all_finite(A):
    """No NaN or infinity in a 2-d array (one pass, no temporary). ``x * 0`` is NaN
    exactly for NaN and infinite ``x``, and NaN survives any order of the sum, so the
    reassociated (vectorised) sum is exact: 6x faster than a test per entry, which
    took 40 us per 256-node structure."""
    acc = 0.0
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            acc += A[i, j] * 0.0
    return acc == 0.0


@jit
def is_symmetric(C):
    """Whether a square array equals its transpose exactly (one pass over the lower
    triangle, no temporary: 3x faster than ``np.array_equal(C, C.T)``)."""
    n = C.shape[0]
    for i in range(n):
        for j in range(i):
            if C[i, j] != C[j, i]:
                return False
    return True


@jit
def _float32_repeats(A, table):
    B, n, m = A.shape
    N = n * m
    mask = table.shape[0] - 1  # a power of two
    bits = 0
    while (1 << bits) <= mask:
        bits += 1
    out = np.zeros(B, dtype=np.int64)
    for b in range(B):
        values = A[b].ravel()
        keys = values.view(np.uint32)
        table[:] = 0
        zeros = 0
        repeats = 0
        for k in range(N):
            if values[k] != values[k]:
                continue  # NaN
            key = keys[k]
            if key == 0 or key == 0x80000000:  # +0.0 and -0.0 (0 marks an empty slot)
                zeros += 1
                continue
            h = ((np.int64(key) * 2654435769) & 0xFFFFFFFF) >> (32 - bits)  # Fibonacci hashing
            while True:
                if table[h] == 0:
                    table[h] = key
                    break
                if table[h] == key:
                    repeats += 1
                    break
                h = (h + 1) & mask
        out[b] = repeats + max(zeros - 1, 0)
    return out


_TABLES = threading.local()
KEPT_TABLE_MAX_SLOTS = 1 << 20
"""Largest hash table (4 MiB) that :func:`float32_repeats` keeps for its thread's next
call; larger costs get a table of their own."""


def float32_repeats(A: np.ndarray) -> np.ndarray:
    """Per matrix of a float32 stack ``(B, n, m)``: how many entries equal an earlier
    entry of the same matrix (NaN equals nothing, ``-0.0`` equals ``0.0``), as counted
    by neighbours in its sorted values: the screen of ``kernels.fgw._repeats_values``.

    Open addressing on the bit patterns, in a table of at least ``4 n m`` slots kept
    per thread (a fresh one per call cost page faults): 2x faster than sorting at
    n = 256, m = 4 to 64."""
    A = np.ascontiguousarray(A, dtype=np.float32)
    B, n, m = A.shape
    slots = 1 << max(4, (4 * n * m - 1).bit_length())
    if slots > 2**31:
        raise ValueError(f"too many entries to screen: {n} x {m}")
    table = getattr(_TABLES, "table", None)
    if table is None or table.size < slots:
        table = np.empty(slots, dtype=np.uint32)
        if slots <= KEPT_TABLE_MAX_SLOTS:
            _TABLES.table = table
    return _float32_repeats(A, table[:slots])


@jit
def _cg_pair(M, C1, C2, w, cap, alpha, max_iter, tol, plan, work, rows, cols, c1_checked):
    """POT's conditional gradient for one pair (module docstring). Returns
    (distance, n_iter, converged, status); fills ``plan`` unless it is empty.
    ``work`` ``(5, n, m)``, ``rows`` ``(4, n)`` int64, ``cols`` ``(4, m)`` int64: scratch
    (multi-threaded page faults on fresh buffers serialised the threads).
    ``c1_checked``: ``C1`` is already known finite and symmetric."""
    n, m = M.shape
    if not (_all_finite(M) and _all_finite(C2) and (c1_checked or _all_finite(C1))):
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
    _rank_one_prices(r1, b, -scale, cap, v)
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
        # POT's solve_1d_linesearch_quad: argmin over [0, 1] of a t^2 + b t
        if a > 0:
            t = min(1.0, max(0.0, -b_ls / (2.0 * a)))
        elif a + b_ls < 0:
            t = 1.0
        else:
            t = 0.0
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
    sets (and 4K-alias) entry for entry, which made the elementwise loops 1.5x slower."""
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
    """One group of pairs of equal shapes for :func:`solve_many`: ``M`` ``(B, n, m)``,
    ``C1`` ``(B, n, n)``, ``C2`` ``(B, m, m)`` (float64); ``w`` ``(B,)``, each pair's
    uniform source weight (``p = w 1``); ``cap`` ``(B, m)``, positive integers summing to
    ``n`` (``q = w cap``), or ``None`` for ``n == m`` and ``q = p``."""

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

    All pairs of all groups are spread over one pool of ``threads`` threads (default
    ``THREADS``, 0: one per CPU), ``PAIRS_PER_TASK`` at a time, so a few large pairs of
    different shapes (the levels of an RD curve) run side by side too. Pairs come
    back with ``status`` ``OK``, or ``NOT_SYMMETRIC`` / ``NOT_FINITE`` to be solved
    another way.
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
    for (M, C1, C2, w, cap), c1_checked in zip(inputs, _shared_structures_checked(inputs), strict=True):
        B, n, m = M.shape
        res = PairResults(
            distance=np.zeros(B),
            n_iter=np.zeros(B, dtype=np.int64),
            converged=np.zeros(B, dtype=np.bool_),
            status=np.zeros(B, dtype=np.int64),
            plans=np.zeros((B if return_plan else 0, n, m)),
        )
        args = (M, C1, C2, w, cap, c1_checked, float(alpha), int(max_iter), float(tol), res.plans)
        for s in range(0, B, PAIRS_PER_TASK):
            tasks.append(
                (*args, s, min(B, s + PAIRS_PER_TASK), res.distance, res.n_iter, res.converged, res.status)
            )
        outs.append(res)
    workers = threads if threads is not None else (THREADS or _cpus())
    largest = max((st.M.shape[1] * st.M.shape[2] for st in stacks), default=0)
    if workers <= 1 or len(tasks) <= 1 or largest > POOL_MAX_ENTRIES:
        for task in tasks:
            _cg_range(*task)  # BLAS keeps its own threads for the products
    else:
        # one BLAS thread per worker thread, or each product's BLAS threads compete
        # with the other workers (the limit is process-wide while the pool runs)
        pool = _pool(workers)
        with one_blas_thread():
            for done in [pool.submit(_cg_range, *task) for task in tasks]:
                done.result()
    if not return_plan:
        for res in outs:
            res.plans = None
    return outs


def _shared_structures_checked(inputs: list[tuple[np.ndarray, ...]]) -> list[np.ndarray]:
    """Per group, per pair: whether its ``C1`` is already known finite and symmetric.

    The levels of an RD curve are single-pair groups that all share the graph's
    structure (views of one array); it is checked once here instead of once per level
    inside :func:`_cg_pair` (about 60 us per check at n = 256). Other pairs check their
    own structures, in the pool's threads."""
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
                verdicts[key] = bool(_all_finite(C1[0]) and is_symmetric(C1[0]))
            known = verdicts[key]
        out.append(np.full(C1.shape[0], known))
    return out


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    """A long-lived pool of ``workers`` threads for this process (starting a pool per
    call cost about 0.5 ms; keyed by pid too, as threads do not survive a fork)."""
    key = (os.getpid(), workers)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fgw-cg")
        return pool


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """The process's BLAS thread pools (found once: the scan takes milliseconds).
    scipy's BLAS, which numba's products call, is loaded first so that it is found."""
    import scipy.linalg.cython_blas  # noqa: F401

    return ThreadpoolController()


_BLAS_LOCK = threading.Lock()
_blas_users = 0
_blas_limiter: Any = None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Hold BLAS to one thread while the pool runs; reference-counted, so overlapping
    callers (threads of one process) restore the original setting only when the last
    one leaves."""
    global _blas_users, _blas_limiter
    with _BLAS_LOCK:
        if _blas_users == 0:
            _blas_limiter = _blas_controller().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


def _cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


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
    """:func:`solve_many` for one group of pairs (see :class:`PairStack`)."""
    return solve_many(
        [PairStack(M, C1, C2, w, cap)], alpha, max_iter, tol, return_plan=return_plan, threads=threads
    )[0]


def assign(cost: np.ndarray, cap: np.ndarray | None = None, prices: np.ndarray | None = None) -> np.ndarray:
    """Optimal assignment of the rows of ``cost`` (``n x m``) to its columns, column
    ``j`` taking ``cap[j]`` rows (default: one each, ``n == m``): row ``i`` goes to
    column ``out[i]``. ``prices``: column prices to start from (updated in place to
    optimal ones; zeros by default). Raises ``ValueError`` for non-finite costs or
    prices."""
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


def warm_up() -> None:
    """Compile the solver, or load it from numba's on-disk cache, now rather than in
    the first run that needs it (about 15 s to compile; under a second to load)."""
    C = np.array([[[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]]])
    solve_pairs(C, C, C, np.array([1.0 / 3.0]), None, 0.5, 10, 1e-9, threads=1)
    solve_pairs(
        C[:, :, :2], C, C[:, :2, :2], np.array([1.0 / 3.0]), np.array([[2, 1]]), 0.5, 10, 1e-9, threads=1
    )
    assign(C[0])
    float32_repeats(C.astype(np.float32))
