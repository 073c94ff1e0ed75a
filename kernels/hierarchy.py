r"""Compiled parts of the coarsening of :mod:`kernels.graphs`: the weighted Ward
hierarchy, its cuts and the cluster sums of a partition.

:func:`ward_merges` builds the hierarchy by nearest-neighbour chain with the
Lance-Williams update of the Ward merge cost (Murtagh and Contreras 2012),
:math:`O(n^2)` time after the distances; :func:`cut_labels` reads off the partition
into ``k`` clusters in :math:`O(n)`; :func:`cluster_sums` sums weights, features and
structure per cluster in :math:`O(n^2 + kn)`. Equal weights keep scipy's ``linkage``
(see ``kernels.graphs._ward_merges``): the same hierarchy, and scipy's order among
exact ties.

Compiled with the runtime of :mod:`kernels._numba` (cached on disk); the module is
imported only by processes that coarsen graphs, since importing it loads numba.

References
----------
Murtagh, Contreras. "Algorithms for hierarchical clustering: an overview", WIREs Data
Mining and Knowledge Discovery 2, 2012.
"""

from __future__ import annotations

import numpy as np

from kernels._numba import jit, jit_reassoc


@jit_reassoc
def _masked_min(row, dead):
    """``min(row + dead)``, reassociated (vectorised): ``dead`` is 0 or inf per entry."""
    low = np.inf
    for j in range(row.shape[0]):
        low = min(low, row[j] + dead[j])
    return low


@jit
def ward_merges(dist2, mass):
    r"""Weighted Ward merges of ``n`` points, sorted by merge cost.

    Parameters
    ----------
    dist2 : ndarray, shape (n, n)
        Squared Euclidean distances between the points (finite, symmetric).
    mass : ndarray, shape (n,)
        Positive point weights (best scaled to at most 1: the costs multiply them).

    Returns
    -------
    ndarray, shape (n - 1, 2), int64
        Rows ``(keep, gone)``: the merge of the clusters represented by nodes
        ``keep < gone`` (a cluster is represented by its smallest node), in
        increasing order of the merge cost
        :math:`\frac{w_A w_B}{w_A + w_B}\|\mu_A - \mu_B\|^2` (ties in the order the
        chain found them). Applying the first ``n - k`` of them gives the Ward
        partition into ``k`` clusters.

    Raises
    ------
    ValueError
        When a merge cost is not finite (distances or weights so large that the
        costs overflow), or the chain does not close (``dist2`` not symmetric):
        both would otherwise corrupt the hierarchy.
    """
    n = dist2.shape[0]
    if dist2.shape[1] != n or mass.shape[0] != n:
        raise ValueError("ward_merges: dist2 must be (n, n) and mass (n,)")
    w = mass.astype(np.float64)
    D = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            D[i, j] = (w[i] * w[j] / (w[i] + w[j])) * dist2[i, j]
        D[i, i] = np.inf
    # merged-away clusters are masked by dead[j] = inf (added, so the row scans
    # vectorise); their rows and columns of D are left stale
    dead = np.zeros(n)
    chain = np.empty(n + 1, dtype=np.int64)
    top = 0
    costs = np.empty(max(n - 1, 0))
    pairs = np.empty((max(n - 1, 0), 2), dtype=np.int64)
    found = 0
    start = 0
    while found < n - 1:
        if top == 0:
            while dead[start] != 0.0:
                start += 1
            chain[0] = start
            top = 1
        a = chain[top - 1]
        row = D[a]
        low = _masked_min(row, dead)
        if not low < np.inf:  # (then the scan below would pick a dead node or a itself)
            raise ValueError("ward_merges: a merge cost is not finite")
        b = 0
        for j in range(n):  # the first nearest neighbour (alive: dead ones are at inf)
            if row[j] + dead[j] == low:
                b = j
                break
        # keep reciprocal pairs on ties, so the chain terminates
        if top >= 2 and row[chain[top - 2]] <= low:
            b = chain[top - 2]
        if top >= 2 and b == chain[top - 2]:
            top -= 2
            keep, gone = min(a, b), max(a, b)
            d_ab = D[a, b]
            costs[found] = d_ab
            pairs[found, 0] = keep
            pairs[found, 1] = gone
            found += 1
            wa, wb = w[keep], w[gone]
            dead[gone] = np.inf
            to_keep, to_gone = D[keep], D[gone]
            for k in range(n):  # Lance-Williams, for the clusters still alive
                wk = w[k]
                new = ((wa + wk) * to_keep[k] + (wb + wk) * to_gone[k] - wk * d_ab) / (wa + wb + wk)
                to_keep[k] = new if dead[k] == 0.0 else to_keep[k]
            to_keep[keep] = np.inf
            for k in range(n):
                if dead[k] == 0.0:
                    D[k, keep] = to_keep[k]
            w[keep] = wa + wb
        else:
            if top >= n:  # more than n nodes: a cycle, which symmetric costs cannot make
                raise ValueError("ward_merges: the nearest-neighbour chain does not close")
            chain[top] = b
            top += 1
    return pairs[np.argsort(costs, kind="mergesort")]


@jit
def cut_labels(pairs, n, k):
    """Cluster labels ``0..k-1`` of the ``n`` nodes after the first ``n - k`` merges
    of ``pairs`` (:func:`ward_merges`), ordered by each cluster's smallest node.

    Linking each retired representative to the one it merged into makes a forest
    whose trees are the clusters: every node is retired at most once and links
    point to smaller nodes, so a tree's root is its smallest node and one pass in
    increasing node order labels every node after its parent."""
    if not 1 <= k <= n or pairs.shape[0] < n - k:
        raise ValueError("cut_labels: k must lie in [1, n], with n - k merges given")
    parent = np.arange(n)
    for t in range(n - k):
        keep, gone = pairs[t, 0], pairs[t, 1]
        if not 0 <= keep < gone < n:
            raise ValueError("cut_labels: merges must be (keep, gone) with 0 <= keep < gone < n")
        parent[gone] = keep
    labels = np.empty(n, dtype=np.int64)
    roots = 0
    for i in range(n):
        if parent[i] == i:
            labels[i] = roots
            roots += 1
        else:
            labels[i] = labels[parent[i]]
    return labels


@jit
def cluster_sums(X, C, w, mapping, k):
    """Per cluster ``a`` of ``mapping`` (labels ``0..k-1``): ``sum w_i``, ``sum w_i x_i``
    and, per pair of clusters ``(a, b)``, ``sum w_i w_j C_ij`` over ``i`` in ``a`` and
    ``j`` in ``b``. Rows of ``C`` are added into their cluster's row (``n * n``
    multiply-adds, then ``k * n``), where the dense ``S^T C S`` with the ``n x k``
    membership matrix ``S`` takes ``n * n * k``."""
    n, d = X.shape
    if C.shape[0] != n or C.shape[1] != n or w.shape[0] != n or mapping.shape[0] != n:
        raise ValueError("cluster_sums: X (n, d), C (n, n), w (n,) and mapping (n,) must agree")
    for i in range(n):
        if not 0 <= mapping[i] < k:
            raise ValueError("cluster_sums: labels must lie in [0, k)")
    W = np.zeros(k)
    F = np.zeros((k, d))
    rows = np.zeros((k, C.shape[1]))
    for i in range(n):  # explicit loops: slice expressions allocate a temporary each
        a = mapping[i]
        wi = w[i]
        W[a] += wi
        for t in range(d):
            F[a, t] += wi * X[i, t]
        for j in range(C.shape[1]):
            rows[a, j] += wi * C[i, j]
    T = np.zeros((k, k))
    for a in range(k):
        for j in range(n):
            T[a, mapping[j]] += rows[a, j] * w[j]
    return W, F, T


def warm_up() -> None:
    """Compile these functions, or load them from numba's on-disk cache, now rather
    than in the first coarsening."""
    dist2 = np.array([[0.0, 1.0, 4.0], [1.0, 0.0, 1.0], [4.0, 1.0, 0.0]])
    labels = cut_labels(ward_merges(dist2, np.ones(3)), 3, 2)
    cluster_sums(dist2, dist2, np.ones(3), labels, 2)
