r"""Structure matrices of graphs and their coarsening to a given number of nodes.

Graph preprocessing is host work (``scipy.sparse.csgraph``): every function takes
array-likes (lists, numpy arrays, scipy sparse matrices, host copies of device
arrays) and returns float64 numpy arrays, which the FGW kernels then move to their
backend.

Conventions
-----------
* Graphs are undirected: an edge ``(i, j)`` sets both ``A[i, j]`` and ``A[j, i]``;
  parallel edges keep the largest weight; self-loops are dropped (a node is at
  distance 0 from itself and its structure entry is 0).
* Structure matrices are normalised to ``[0, 1]``: weighted adjacency by its largest
  weight, shortest paths by the largest *finite* distance. Pairs in different
  connected components are set to ``DISCONNECTED_DISTANCE`` (1.0) after that
  normalisation, i.e. as far apart as the two farthest connected nodes.

Coarsening (:func:`coarsen`)
----------------------------
Nodes are grouped by weighted Ward agglomerative clustering (deterministic, no
random seed) on the embedding

.. math::
    z_i = \bigl(\sqrt{1-\alpha}\, x_i,\; \sqrt{\alpha}\, C_{i\cdot} \odot \sqrt{\bar p}\bigr),
    \qquad \|z_i - z_j\|^2 = (1-\alpha)\|x_i - x_j\|^2
        + \alpha \sum_k \bar p_k (C_{ik} - C_{jk})^2,

with :math:`\bar p = p / \sum p`: two nodes are close when their features and their
(weighted) structure rows are, with the same trade-off ``alpha`` as the FGW cost. Ward
merges the two clusters whose merge increases the weighted within-cluster sum of
squares least, :math:`\frac{w_A w_B}{w_A + w_B}\|\mu_A - \mu_B\|^2`. The hierarchy is
built once (nearest-neighbour chain with the Lance-Williams update: scipy's
``linkage`` for equal weights, :mod:`kernels.hierarchy` otherwise; :math:`O(n^2)` time
and memory after the :math:`O(n^2 (d + n))` embedding distances), so the
partitions at different ``k`` are nested: refining never undoes a merge.

For a partition with assignment :math:`a(i)` the coarse graph is

.. math::
    W_a = \sum_{i \in a} p_i,\qquad
    \bar x_a = \frac{1}{W_a} \sum_{i\in a} p_i x_i,\qquad
    \bar C_{ab} = \frac{1}{W_a W_b} \sum_{i\in a}\sum_{j\in b} p_i p_j C_{ij},

weight-averaged features and structure (the diagonal :math:`\bar C_{aa}` is the
mean structure inside cluster ``a``, non-zero once it holds several nodes). These are
the least-squares optimal coarse values for the coupling that sends each node to its
cluster, :math:`T_{ia} = p_i [a(i) = a]`, so the FGW distance between the graph
and its coarsening is at most the weighted within-cluster error of that coupling,
which shrinks as the partition is refined. A cluster whose nodes all have zero
weight gets unweighted means and weight 0.

References
----------
Ward, "Hierarchical grouping to optimize an objective function", JASA 1963.
Murtagh and Contreras, "Algorithms for hierarchical clustering: an overview",
WIREs Data Mining Knowl. Discov. 2012 (nearest-neighbour chain, Lance-Williams).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path as _csgraph_shortest_path

DISCONNECTED_DISTANCE = 1.0
"""Normalised distance between nodes in different connected components (the largest
finite distance normalises to 1, so disconnected pairs count as the farthest ones)."""

CLUSTER_MASS_FLOOR = 1e-9
"""Zero node weights are raised to this fraction of the largest weight *for the
clustering only* (Ward's merge cost is 0/0 between two massless clusters); the coarse
weights and averages use the true weights."""

EdgeKind = Literal["auto", "edges", "adjacency"]


@dataclass(frozen=True, slots=True)
class Coarsening:
    """A graph coarsened to ``k`` nodes.

    Attributes
    ----------
    features : ndarray, shape (k, d)
        Weight-averaged features of each cluster.
    structure : ndarray, shape (k, k)
        Weight-averaged structure between (and, on the diagonal, within) clusters.
    weights : ndarray, shape (k,)
        Summed node weights of each cluster (same total as the input weights).
    mapping : ndarray of int, shape (n,)
        Cluster of each original node; clusters are numbered in the order of their
        smallest node, so ``k == n`` gives ``arange(n)``.
    """

    features: np.ndarray
    structure: np.ndarray
    weights: np.ndarray
    mapping: np.ndarray

    @property
    def k(self) -> int:
        """Number of coarse nodes."""
        return int(self.weights.shape[0])


# --------------------------------------------------------------------------- structure


def _to_host(a: Any) -> Any:
    """A numpy view of torch/cupy arrays; other inputs unchanged."""
    if hasattr(a, "detach"):  # torch
        return a.detach().cpu().numpy()
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    return a


def _is_symmetric_zero_diagonal(a: np.ndarray) -> bool:
    return bool(np.array_equal(a, a.T) and not np.any(np.diag(a)))


def _edges_valid(rows: Sequence[Sequence[Any]], n: int | None) -> bool:
    try:
        for row in rows:
            i, j = row[0], row[1]
            if float(i) != int(i) or float(j) != int(j) or int(i) < 0 or int(j) < 0:
                return False
            if n is not None and (int(i) >= n or int(j) >= n):
                return False
            if len(row) == 3 and not float(row[2]) > 0:
                return False
    except (TypeError, ValueError):
        return False
    return True


def _resolve_kind(obj: Any, n: int | None, kind: EdgeKind) -> str:
    """Decide whether ``obj`` is an edge list or an adjacency matrix.

    ``auto``: scipy sparse matrices are adjacency; rows of different lengths or an
    ``(m, 2)``/``(m, 3)`` table that is not square (or whose size differs from ``n``)
    are edges; other square tables are adjacency, except a 2x2 or 3x3 table that is
    not symmetric with a zero diagonal but reads as a valid edge list. (A symmetric,
    zero-diagonal 2x2 table describes the same graph either way.)
    """
    if kind != "auto":
        if kind not in ("edges", "adjacency"):
            raise ValueError(f"kind must be 'auto', 'edges' or 'adjacency', not {kind!r}")
        return kind
    if sp.issparse(obj):
        return "adjacency"
    rows = list(obj)
    if not rows:
        return "edges"
    lengths = {len(r) for r in rows}
    if len(lengths) > 1:
        return "edges"
    (width,) = lengths
    square = width == len(rows)
    if not square:
        if width in (2, 3):
            return "edges"
        raise ValueError(
            f"expected an edge list ((m, 2) or (m, 3)) or a square adjacency, got {len(rows)}x{width}"
        )
    if width not in (2, 3):
        return "adjacency"
    if n is not None and n != width:
        return "edges"
    table = np.asarray(rows, dtype=np.float64)
    if _is_symmetric_zero_diagonal(table) or not _edges_valid(rows, n):
        return "adjacency"
    return "edges"


def adjacency(
    edges_or_adj: Any,
    n: int | None = None,
    *,
    weighted: bool | None = None,
    normalize: bool = True,
    kind: EdgeKind = "auto",
) -> np.ndarray:
    """Symmetric adjacency matrix of an undirected graph.

    Parameters
    ----------
    edges_or_adj : edge list or adjacency
        Either edges ``[(i, j), (i, j, w), ...]`` (rows may mix pairs and
        triples; ``w > 0``), or a square adjacency (array-like or scipy sparse),
        where any non-zero entry ``A[i, j]`` or ``A[j, i]`` is an edge. See
        ``kind`` for how the two are told apart.
    n : int, optional
        Number of nodes; defaults to the largest node index + 1 for edges, and
        must match the matrix for an adjacency.
    weighted : bool, optional
        ``None``: keep the weights the input carries (edge triples, adjacency
        values); ``False``: every edge is 1; ``True``: keep weights, pairs are 1.
    normalize : bool
        Divide by the largest weight so the result lies in ``[0, 1]`` (a no-op
        for 0/1 adjacency).
    kind : {"auto", "edges", "adjacency"}
        Force the reading of ``edges_or_adj``. ``auto`` reads a 2x2 or 3x3 table
        as an adjacency when it is symmetric with a zero diagonal or is not a
        valid edge list, else as edges; pass ``kind`` when that guess is wrong.

    Returns
    -------
    ndarray, shape (n, n), float64
        Symmetric, zero diagonal, non-negative.

    Raises
    ------
    ValueError
        On negative or non-finite weights, node indices outside ``[0, n)``, or a
        non-square adjacency.
    """
    obj = _to_host(edges_or_adj)
    which = _resolve_kind(obj, n, kind)
    if which == "adjacency":
        A = obj.toarray() if sp.issparse(obj) else np.asarray(obj, dtype=np.float64)
        A = np.array(A, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"an adjacency must be square, got shape {A.shape}")
        if n is not None and A.shape[0] != n:
            raise ValueError(f"adjacency has {A.shape[0]} nodes, n={n}")
        if not np.all(np.isfinite(A)) or np.any(A < 0):
            raise ValueError("adjacency entries must be finite and non-negative")
        if weighted is False:
            A = (A != 0).astype(np.float64)
        A = np.maximum(A, A.T)
    else:
        rows = [tuple(r) for r in obj]
        if any(len(r) not in (2, 3) for r in rows):
            raise ValueError("each edge must be (i, j) or (i, j, weight)")
        src = np.array([r[0] for r in rows], dtype=np.float64)
        dst = np.array([r[1] for r in rows], dtype=np.float64)
        if np.any(src != np.round(src)) or np.any(dst != np.round(dst)):
            raise ValueError("node indices must be integers")
        src, dst = src.astype(np.int64), dst.astype(np.int64)
        w = np.array(
            [float(r[2]) if len(r) == 3 and weighted is not False else 1.0 for r in rows],
            dtype=np.float64,
        )
        size = n if n is not None else (int(max(src.max(), dst.max())) + 1 if rows else 0)
        if rows and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= size):
            raise ValueError(f"node indices must lie in [0, {size})")
        if not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError("edge weights must be finite and positive")
        A = np.zeros((size, size), dtype=np.float64)
        np.maximum.at(A, (src, dst), w)
        np.maximum.at(A, (dst, src), w)
    np.fill_diagonal(A, 0.0)
    if normalize and A.size and A.max() > 0:
        A /= A.max()
    return A


def shortest_path(
    edges_or_adj: Any,
    n: int | None = None,
    *,
    weighted: bool | None = None,
    normalize: bool = True,
    kind: EdgeKind = "auto",
) -> np.ndarray:
    """All-pairs shortest-path distances (``scipy.sparse.csgraph.shortest_path``).

    Edge weights are lengths (``weighted`` as in :func:`adjacency`; unweighted
    graphs count hops).

    Parameters
    ----------
    edges_or_adj, n, weighted, kind
        As in :func:`adjacency` (the adjacency is taken unnormalised).
    normalize : bool
        Divide by the largest finite distance, then set disconnected pairs to
        ``DISCONNECTED_DISTANCE``; the result lies in ``[0, 1]``. With ``False``
        distances are raw and disconnected pairs are ``inf``.

    Returns
    -------
    ndarray, shape (n, n), float64
        Symmetric with a zero diagonal.
    """
    A = adjacency(edges_or_adj, n, weighted=weighted, normalize=False, kind=kind)
    if A.shape[0] == 0:
        return A
    D = _csgraph_shortest_path(sp.csr_matrix(A), method="auto", directed=False)
    D = np.minimum(D, D.T)  # sums along a path in the two directions may differ by an ulp
    if not normalize:
        return D
    finite = np.isfinite(D)
    top = D[finite].max()
    if top > 0:
        D = np.where(finite, D / top, DISCONNECTED_DISTANCE)
    else:
        D = np.where(finite, 0.0, DISCONNECTED_DISTANCE)
    np.fill_diagonal(D, 0.0)
    return D


# --------------------------------------------------------------------------- coarsening


def _check_graph(features: Any, structure: Any, weights: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    C = np.asarray(_to_host(structure), dtype=np.float64)
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise ValueError(f"structure must be square, got shape {C.shape}")
    n = C.shape[0]
    if n == 0:
        raise ValueError("the graph has no nodes")
    if features is None:
        X = np.zeros((n, 0))
    else:
        X = np.asarray(_to_host(features), dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2 or X.shape[0] != n:
            raise ValueError(f"features must have shape ({n}, d), got {X.shape}")
    if weights is None:
        p = np.full(n, 1.0 / n)
    else:
        p = np.asarray(_to_host(weights), dtype=np.float64).reshape(-1)
        if p.shape != (n,):
            raise ValueError(f"weights must have shape ({n},), got {p.shape}")
        if not np.all(np.isfinite(p)) or np.any(p < 0) or not p.sum() > 0:
            raise ValueError("weights must be finite, non-negative, with a positive sum")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(C))):
        raise ValueError("features and structure must be finite")
    return X, C, p


def _embedding_distances(X: np.ndarray, C: np.ndarray, p: np.ndarray, alpha: float) -> np.ndarray:
    r"""Squared Euclidean distances between the rows of the clustering embedding
    :math:`Z = [\sqrt{1-\alpha}\,X,\ \sqrt{\alpha}\,C\,\mathrm{diag}(\bar p)^{1/2}]`, from its
    Gram matrix (``Z @ Z.T``, which numpy hands to BLAS's symmetric rank-k update:
    half the work of a general product). Clipped at 0 (round-off); inf or NaN where
    huge inputs overflow the products, which :func:`_ward_merges` refuses."""
    pbar = p / p.sum()
    Z = np.hstack([np.sqrt(1.0 - alpha) * X, np.sqrt(alpha) * C * np.sqrt(pbar)[None, :]])
    with np.errstate(over="ignore", invalid="ignore"):
        dist2 = Z @ Z.T
        sq = np.diagonal(dist2).copy()
        # mostly in place (fresh n x n temporaries cost more in page faults than their
        # arithmetic); sq_i + sq_j added as one term keeps the result exactly symmetric,
        # which the nearest-neighbour chain of _ward_merges needs to terminate
        dist2 *= -2.0
        dist2 += np.add.outer(sq, sq)
        return np.maximum(dist2, 0.0, out=dist2)


def _ward_merges(dist2: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Weighted Ward merges by nearest-neighbour chain, sorted by merge cost:
    ``(n - 1, 2)`` pairs of representative nodes (each cluster's smallest); applying
    the first ``n - k`` of them gives the partition into ``k`` clusters.

    Equal masses go through scipy's ``linkage(method="ward")``, which the compiled
    chain (:func:`kernels.hierarchy.ward_merges`) equals except in the order of exact
    ties (grids, duplicate or categorical points): scipy's order keeps those
    partitions what they have always been. Uneven masses take the compiled chain.
    Raises ``ValueError`` for non-finite distances (finite inputs so large that the
    embedding's products overflow)."""
    if not np.isfinite(dist2).all():
        raise ValueError(
            "the coarsening's clustering distances overflow: features or structure values too large"
        )
    if np.all(mass == mass[0]):
        return _ward_merges_uniform(dist2)
    from kernels import hierarchy  # numba: loaded only by processes that coarsen

    return hierarchy.ward_merges(
        np.ascontiguousarray(dist2, dtype=np.float64), np.ascontiguousarray(mass, dtype=np.float64)
    )


def _ward_merges_uniform(dist2: np.ndarray) -> np.ndarray:
    """:func:`_ward_merges` for equal masses, through scipy's compiled Ward linkage
    (the same Lance-Williams update on the square root of the cost); scipy's cluster
    ids are mapped to representative nodes (the smallest member)."""
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    n = dist2.shape[0]
    # condensed distances from the Gram matrix's (BLAS; pdist's direct loop is several
    # times slower in the n + d dimensions of the embedding)
    tree = linkage(np.sqrt(squareform(dist2, checks=False)), method="ward")
    rep = list(range(n))  # plain lists: numpy scalar indexing is slow in this loop
    merges = []
    for a, b in tree[:, :2].astype(np.int64).tolist():
        ra, rb = rep[a], rep[b]
        keep, gone = (ra, rb) if ra < rb else (rb, ra)
        rep.append(keep)
        merges.append((keep, gone))
    return np.array(merges, dtype=np.int64).reshape(-1, 2)


def _cuts(merges: np.ndarray, n: int, ks: Sequence[int]) -> dict[int, np.ndarray]:
    """Cluster labels ``0..k-1`` after the first ``n - k`` merges, for every ``k`` of
    ``ks`` (labels ordered by each cluster's smallest node)."""
    from kernels import hierarchy

    pairs = np.asarray(merges, dtype=np.int64).reshape(-1, 2)
    return {k: hierarchy.cut_labels(pairs, n, k) for k in set(ks)}


def _cluster_sums(
    X: np.ndarray, C: np.ndarray, w: np.ndarray, mapping: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cluster of ``mapping``: ``sum w``, ``sum w x`` and, per pair of clusters,
    ``sum w_i w_j C_ij`` (from nodes, or from the clusters of a finer nested level;
    :func:`kernels.hierarchy.cluster_sums`)."""
    from kernels import hierarchy

    return hierarchy.cluster_sums(
        np.ascontiguousarray(X, dtype=np.float64),
        np.ascontiguousarray(C, dtype=np.float64),
        np.ascontiguousarray(w, dtype=np.float64),
        np.ascontiguousarray(mapping, dtype=np.int64),
        k,
    )


def _coarsenings(
    X: np.ndarray, C: np.ndarray, p: np.ndarray, mappings: dict[int, np.ndarray], symmetric: bool
) -> dict[int, Coarsening]:
    """The coarsening of every level in ``mappings`` (nested partitions of the nodes).

    Cluster means are weighted by ``p``; inside a massless cluster, unweighted. With
    every weight positive no cluster is massless at any level, so each level's sums
    are those of the next finer level summed over its clusters (``k x k`` work instead
    of ``n x n``); otherwise every level is summed from the nodes.
    """
    n = X.shape[0]
    nested = bool((p > 0).all())
    out: dict[int, Coarsening] = {}
    finer: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    for k in sorted(mappings, reverse=True):
        mapping = mappings[k]
        if k == n:
            out[k] = Coarsening(X.copy(), C.copy(), p.copy(), np.arange(n, dtype=np.int64))
            continue
        if finer is not None:  # sum the finer level's sums over this level's clusters
            W_f, F_f, T_f, mapping_f = finer
            parent = np.empty(len(W_f), dtype=np.int64)
            parent[mapping_f] = mapping  # nested: a finer cluster's nodes share one parent
            _, F, T = _cluster_sums(F_f, T_f, np.ones(len(W_f)), parent, k)
            W = U = np.bincount(parent, weights=W_f, minlength=k)
        else:
            W = np.bincount(mapping, weights=p, minlength=k)
            u = np.where(W[mapping] <= 0, 1.0, p)  # unweighted means inside massless clusters
            U, F, T = _cluster_sums(X, C, u, mapping, k)
        structure = T / np.outer(U, U)
        if symmetric:
            # the products' round-off breaks the symmetry in the last bits; restoring it
            # exactly lets the FGW solvers use their symmetric-structure algebra
            structure = 0.5 * (structure + structure.T)
        out[k] = Coarsening(F / U[:, None], structure, W, mapping)
        if nested:
            finer = (W, F, T, mapping)
    return out


def coarsen_levels(
    features: Any,
    structure: Any,
    weights: Any,
    levels: Sequence[int],
    *,
    alpha: float = 0.5,
) -> list[Coarsening]:
    """Coarsenings at several levels from one (nested) Ward hierarchy.

    Parameters
    ----------
    features : array-like, shape (n, d), or None
        Node features (``None``: structure only).
    structure : array-like, shape (n, n)
        Structure matrix (adjacency or normalised shortest paths).
    weights : array-like, shape (n,), or None
        Non-negative node weights; uniform ``1/n`` when ``None``.
    levels : sequence of int
        Numbers of coarse nodes, each in ``[1, n]``.
    alpha : float
        Feature/structure trade-off of the clustering embedding, in ``[0, 1]``
        (use the FGW ``alpha``).

    Returns
    -------
    list of Coarsening
        One per level, in the order of ``levels``.
    """
    X, C, p = _check_graph(features, structure, weights)
    _check_alpha(alpha)
    return _coarsen_checked(X, C, p, _check_levels(levels, C.shape[0]), alpha)


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")


def _check_levels(levels: Sequence[int], n: int) -> list[int]:
    ks = [int(k) for k in levels]
    if any(k != level for k, level in zip(ks, levels, strict=True)) or any(not 1 <= k <= n for k in ks):
        raise ValueError(f"levels must be integers in [1, {n}], got {list(levels)}")
    return ks


def _coarsen_checked(
    X: np.ndarray, C: np.ndarray, p: np.ndarray, ks: list[int], alpha: float
) -> list[Coarsening]:
    """:func:`coarsen_levels` on inputs it has validated (``_check_graph``; levels in
    ``[1, n]``; ``alpha`` in ``[0, 1]``)."""
    n = C.shape[0]
    from kernels._numba import is_symmetric  # numba: loaded only by processes that coarsen

    merges = np.empty((0, 2), dtype=np.int64)
    if any(1 < k < n for k in ks):
        dist2 = _embedding_distances(X, C, p, alpha)
        # masses scaled to at most 1 (the merge costs multiply them; the hierarchy does
        # not change with a common scale)
        merges = _ward_merges(dist2, np.maximum(p / p.max(), CLUSTER_MASS_FLOOR))
    symmetric = bool(is_symmetric(C))
    mappings = _cuts(merges, n, [k for k in ks if 1 < k < n])
    mappings[n] = np.arange(n, dtype=np.int64)
    mappings[1] = np.zeros(n, dtype=np.int64)
    levels_out = _coarsenings(X, C, p, {k: mappings[k] for k in set(ks)}, symmetric)
    return [levels_out[k] for k in ks]


def coarsen(
    features: Any,
    structure: Any,
    weights: Any,
    k: int,
    *,
    alpha: float = 0.5,
) -> Coarsening:
    """Coarsen an attributed graph to ``k`` nodes (weighted Ward clustering).

    See the module docstring for the clustering embedding and the averages.

    Parameters
    ----------
    features : array-like, shape (n, d), or None
        Node features.
    structure : array-like, shape (n, n)
        Structure matrix.
    weights : array-like, shape (n,), or None
        Node weights (uniform when ``None``).
    k : int
        Number of coarse nodes, ``1 <= k <= n``; ``k == n`` is the identity.
    alpha : float
        Feature/structure trade-off of the clustering, as in FGW.

    Returns
    -------
    Coarsening
        Coarse ``features (k, d)``, ``structure (k, k)``, ``weights (k,)`` and the
        node ``mapping (n,)``.
    """
    return coarsen_levels(features, structure, weights, [k], alpha=alpha)[0]
