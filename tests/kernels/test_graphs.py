"""kernels.graphs: structure matrices and coarsening."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.cluster.hierarchy import cut_tree, linkage
from scipy.spatial.distance import squareform

from kernels import graphs
from kernels.fgw import fgw
from kernels.graphs import Coarsening, adjacency, coarsen, coarsen_levels, shortest_path


def random_edges(rng: np.random.Generator, n: int, density: float, weighted: bool) -> list[tuple]:
    edges: list[tuple] = []
    for i in range(n):
        for j in range(i + 1, n):
            if rng.random() < density:
                edges.append((i, j, float(rng.uniform(0.1, 3.0))) if weighted else (i, j))
    return edges


def floyd_warshall(n: int, edges: list[tuple]) -> np.ndarray:
    D = np.full((n, n), np.inf)
    np.fill_diagonal(D, 0.0)
    for e in edges:
        i, j = e[0], e[1]
        w = e[2] if len(e) == 3 else 1.0
        D[i, j] = D[j, i] = min(D[i, j], w)
    for k in range(n):
        for i in range(n):
            for j in range(n):
                if D[i, k] + D[k, j] < D[i, j]:
                    D[i, j] = D[i, k] + D[k, j]
    return D


def random_graph(rng: np.random.Generator, n: int, d: int = 2) -> tuple[np.ndarray, np.ndarray]:
    C = shortest_path(random_edges(rng, n, 0.3, weighted=False), n)
    return rng.normal(size=(n, d)), C


# --------------------------------------------------------------------------- structure


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12), weighted=st.booleans())
def test_shortest_path_equals_floyd_warshall(seed, n, weighted):
    rng = np.random.default_rng(seed)
    edges = random_edges(rng, n, float(rng.uniform(0.05, 0.6)), weighted)

    raw = shortest_path(edges, n, normalize=False)
    expected = floyd_warshall(n, edges)

    np.testing.assert_allclose(raw, expected, rtol=1e-12)
    normed = shortest_path(edges, n)
    finite = np.isfinite(expected)
    top = expected[finite].max()
    assert normed.min() >= 0.0 and normed.max() <= 1.0
    np.testing.assert_array_equal(normed[~finite], graphs.DISCONNECTED_DISTANCE)
    if top > 0:
        np.testing.assert_allclose(normed[finite], expected[finite] / top, rtol=1e-12)
        assert normed[finite].max() == 1.0
    np.testing.assert_array_equal(np.diag(normed), 0.0)
    np.testing.assert_array_equal(normed, normed.T)


def test_shortest_path_of_a_path_graph_and_of_its_adjacency():
    edges = [[0, 1], [1, 2], [2, 3]]
    expected = np.abs(np.subtract.outer(np.arange(4), np.arange(4))) / 3.0
    np.testing.assert_allclose(shortest_path(edges, n=4), expected)
    np.testing.assert_allclose(shortest_path(adjacency(edges, n=4)), expected)
    np.testing.assert_allclose(shortest_path(sp.csr_matrix(adjacency(edges, n=4))), expected)


def test_shortest_path_without_edges_is_all_disconnected():
    D = shortest_path([], n=3)
    np.testing.assert_array_equal(D, 1.0 - np.eye(3))


def test_adjacency_from_mixed_edges_is_symmetric_and_normalised():
    A = adjacency([[0, 1], [1, 2, 0.5], [2, 1, 4.0], [3, 3]], n=5)
    expected = np.zeros((5, 5))
    expected[0, 1] = expected[1, 0] = 1.0 / 4.0
    expected[1, 2] = expected[2, 1] = 1.0  # parallel edges keep the largest weight
    np.testing.assert_array_equal(A, expected)  # self-loop dropped, node 4 isolated
    np.testing.assert_array_equal(
        adjacency([[0, 1], [1, 2, 0.5]], n=3, weighted=False),
        [[0, 1, 0], [1, 0, 1], [0, 1, 0]],
    )
    raw = adjacency([[0, 1, 2.0], [1, 2, 0.5]], normalize=False)
    assert raw[0, 1] == 2.0 and raw[1, 2] == 0.5


@pytest.mark.parametrize(
    ("obj", "n", "expected"),
    [
        # 2 edges of a 3-node path: a 2x2 table that is not the graph's adjacency
        ([[0, 1], [1, 2]], 3, [[0, 1, 0], [1, 0, 1], [0, 1, 0]]),
        # a triangle as three weighted edges (3x3) against a 3x3 adjacency
        ([[0, 1, 1.0], [1, 2, 1.0], [2, 0, 1.0]], 3, [[0, 1, 1], [1, 0, 1], [1, 1, 0]]),
        ([[0, 1, 0], [1, 0, 1], [0, 1, 0]], None, [[0, 1, 0], [1, 0, 1], [0, 1, 0]]),
        ([[0, 1], [1, 0]], None, [[0, 1], [1, 0]]),
        (np.array([[0, 2, 0, 0], [2, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]]), None, None),
    ],
)
def test_adjacency_tells_edge_lists_from_matrices(obj, n, expected):
    A = adjacency(obj, n)
    if expected is None:
        expected = np.asarray(obj) / 2.0
    np.testing.assert_array_equal(A, expected)


def test_adjacency_kind_override_and_errors():
    np.testing.assert_array_equal(
        adjacency([[0, 1], [0, 0]], kind="adjacency"), [[0, 1], [1, 0]]
    )  # directed entry symmetrised
    with pytest.raises(ValueError, match="node indices"):
        adjacency([[0, 5]], n=3)
    with pytest.raises(ValueError, match="positive"):
        adjacency([[0, 1, -1.0], [1, 2]], n=3)
    with pytest.raises(ValueError, match="square"):
        adjacency(np.zeros((3, 4)))
    with pytest.raises(ValueError):
        adjacency(np.zeros((3, 3)), n=4, kind="adjacency")


# --------------------------------------------------------------------------- coarsening


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 20), data=st.data())
def test_coarsen_invariants(seed, n, data):
    rng = np.random.default_rng(seed)
    X, C = random_graph(rng, n, d=3)
    p = rng.uniform(0.1, 1.0, n)
    p /= p.sum()
    k = data.draw(st.integers(1, n))

    c = coarsen(X, C, p, k)

    assert isinstance(c, Coarsening) and c.k == k
    assert c.features.shape == (k, 3) and c.structure.shape == (k, k) and c.mapping.shape == (n,)
    assert sorted(set(c.mapping.tolist())) == list(range(k))  # every cluster used
    assert c.weights.sum() == pytest.approx(p.sum(), rel=1e-12)
    for a in range(k):
        members = c.mapping == a
        assert c.weights[a] == pytest.approx(p[members].sum(), rel=1e-12)
        np.testing.assert_allclose(c.features[a], p[members] @ X[members] / p[members].sum())
    S = np.eye(k)[c.mapping]
    expected = (S * p[:, None]).T @ C @ (S * p[:, None]) / np.outer(c.weights, c.weights)
    np.testing.assert_allclose(c.structure, expected, rtol=1e-10)
    # exactly symmetric, bit for bit: the FGW assignment path relies on it
    np.testing.assert_array_equal(c.structure, c.structure.T)
    assert c.structure.min() >= 0.0 and c.structure.max() <= 1.0 + 1e-12
    first = [int(np.flatnonzero(c.mapping == a)[0]) for a in range(k)]
    assert first == sorted(first)  # clusters numbered by their smallest node


def test_coarsen_to_n_is_the_identity_with_zero_distortion():
    rng = np.random.default_rng(1)
    X, C = random_graph(rng, 9)
    c = coarsen(X, C, None, 9)
    np.testing.assert_array_equal(c.mapping, np.arange(9))
    np.testing.assert_array_equal(c.features, X)
    np.testing.assert_array_equal(c.structure, C)
    M = ((X[:, None, :] - c.features[None, :, :]) ** 2).sum(-1)
    assert fgw(M, C, c.structure, None, c.weights, backend="numpy").distance == pytest.approx(0, abs=1e-12)


def test_coarsen_to_one_node_is_the_weighted_mean():
    rng = np.random.default_rng(2)
    X, C = random_graph(rng, 7)
    p = rng.uniform(0.1, 1.0, 7)
    c = coarsen(X, C, p, 1)
    np.testing.assert_array_equal(c.mapping, 0)
    np.testing.assert_allclose(c.features[0], p @ X / p.sum())
    np.testing.assert_allclose(c.structure[0, 0], p @ C @ p / p.sum() ** 2)


def test_uniform_weights_give_scipys_ward_partitions():
    rng = np.random.default_rng(3)
    X, C = random_graph(rng, 30)
    alpha = 0.3
    p = np.full(30, 1 / 30)
    Z = np.hstack([np.sqrt(1 - alpha) * X, np.sqrt(alpha) * C * np.sqrt(p)])
    tree = linkage(Z, method="ward")
    for k in (2, 4, 9, 17, 29):
        ours = coarsen(X, C, None, k, alpha=alpha).mapping
        ref = cut_tree(tree, n_clusters=k).ravel()
        pairs = set(zip(ours.tolist(), ref.tolist(), strict=True))
        assert len(pairs) == k  # the same partition, up to the cluster labels


def test_levels_are_nested_and_deterministic():
    rng = np.random.default_rng(4)
    X, C = random_graph(rng, 25)
    p = rng.uniform(0.0, 1.0, 25)
    p[[3, 7]] = 0.0  # zero weights are allowed
    levels = [1, 2, 3, 5, 8, 13, 21, 25]
    out = coarsen_levels(X, C, p, levels)
    again = coarsen_levels(X, C, p, levels)
    for a, b in zip(out, again, strict=True):
        np.testing.assert_array_equal(a.mapping, b.mapping)
    for coarse, fine in zip(out, out[1:], strict=False):
        # every fine cluster lies inside one coarse cluster
        for cluster in range(fine.k):
            assert len(set(coarse.mapping[fine.mapping == cluster].tolist())) == 1
    single = coarsen(X, C, p, 8)
    np.testing.assert_array_equal(single.mapping, out[4].mapping)
    assert all(np.isfinite(c.features).all() and np.isfinite(c.structure).all() for c in out)


def test_coarsen_rejects_bad_input():
    X, C = np.zeros((4, 2)), np.zeros((4, 4))
    with pytest.raises(ValueError, match="levels"):
        coarsen(X, C, None, 0)
    with pytest.raises(ValueError, match="levels"):
        coarsen(X, C, None, 5)
    with pytest.raises(ValueError, match="weights"):
        coarsen(X, C, [0.5, 0.5, -0.5, 0.5], 2)
    with pytest.raises(ValueError, match="features"):
        coarsen(np.zeros((3, 2)), C, None, 2)


def test_kernels_graph_modules_import_no_platform_code():
    root = Path(__file__).resolve().parents[2] / "kernels"
    for name in ("graphs.py", "rd.py"):
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] not in {"django", "celery", "apps", "rest_framework"}


def reference_ward_merges(dist2: np.ndarray, mass: np.ndarray) -> list[tuple[int, int]]:
    """Weighted Ward by nearest-neighbour chain in plain numpy (the algorithm of
    kernels.hierarchy.ward_merges, one vectorised Lance-Williams update per merge)."""
    n = dist2.shape[0]
    w = mass.astype(np.float64).copy()
    D = (w[:, None] * w[None, :] / (w[:, None] + w[None, :])) * dist2
    np.fill_diagonal(D, np.inf)
    active = np.ones(n, dtype=bool)
    chain: list[int] = []
    found: list[tuple[float, int, int]] = []
    while len(found) < n - 1:
        if not chain:
            chain.append(int(np.flatnonzero(active)[0]))
        a = chain[-1]
        b = int(np.argmin(D[a]))
        if len(chain) >= 2 and D[a, chain[-2]] <= D[a, b]:
            b = chain[-2]
        if len(chain) >= 2 and b == chain[-2]:
            chain.pop()
            chain.pop()
            keep, gone = min(a, b), max(a, b)
            d_ab = D[a, b]
            found.append((float(d_ab), keep, gone))
            others = active.copy()
            others[[keep, gone]] = False
            wa, wb, wk = w[keep], w[gone], w[others]
            new = ((wa + wk) * D[keep, others] + (wb + wk) * D[gone, others] - wk * d_ab) / (wa + wb + wk)
            D[keep, others] = new
            D[others, keep] = new
            D[gone, :] = np.inf
            D[:, gone] = np.inf
            w[keep] = wa + wb
            active[gone] = False
        else:
            chain.append(b)
    order = sorted(range(len(found)), key=lambda t: (found[t][0], t))
    return [(found[t][1], found[t][2]) for t in order]


@pytest.mark.parametrize("uniform", [True, False])
def test_compiled_ward_is_the_reference_hierarchy(uniform):
    # given: embedding distances, equal or uneven masses
    from kernels import hierarchy

    rng = np.random.default_rng(8)
    X, C = random_graph(rng, 60)
    p = np.full(60, 1 / 60) if uniform else rng.uniform(0.1, 1.0, 60)
    dist2 = graphs._embedding_distances(X, C, p, 0.5)
    # when
    merges = hierarchy.ward_merges(dist2, p)
    # then: the same merges in the same order, and every level has k clusters
    assert [tuple(pair) for pair in merges.tolist()] == reference_ward_merges(dist2, p)
    assert graphs._ward_merges(dist2, p).tolist() == merges.tolist()  # (uniform: through scipy)
    levels = list(range(1, 61))
    cuts = graphs._cuts(merges, 60, levels)
    for k in levels:
        assert len(np.unique(cuts[k])) == k


def first_merges_of(tree: np.ndarray, n: int, k: int) -> np.ndarray:
    """Labels after the first n - k rows of a scipy linkage, ordered by smallest node
    (scipy's cut_tree orders tied rows otherwise)."""
    members = {i: {i} for i in range(n)}
    for t, (a, b) in enumerate(tree[: n - k, :2].astype(int).tolist()):
        members[n + t] = members.pop(a) | members.pop(b)
    labels = np.empty(n, dtype=np.int64)
    for label, nodes in enumerate(sorted(members.values(), key=min)):
        labels[list(nodes)] = label
    return labels


def test_equal_weights_keep_scipys_order_on_exact_ties():
    # given: points on a grid and duplicates, with no structure: many exactly tied merges
    grid = np.array([[i, j] for i in range(6) for j in range(6)], dtype=float)
    X = np.vstack([grid, grid[:8]])
    n = len(X)
    dist2 = graphs._embedding_distances(X, np.zeros((n, n)), np.full(n, 1 / n), 0.0)
    tree = linkage(squareform(np.sqrt(dist2), checks=False), method="ward")
    # when
    levels = coarsen_levels(X, np.zeros((n, n)), None, list(range(1, n + 1)), alpha=0.0)
    # then: scipy's merges at every level (the compiled chain orders some ties
    # otherwise, and would change these partitions from what they have been)
    for k, level in enumerate(levels, start=1):
        np.testing.assert_array_equal(level.mapping, first_merges_of(tree, n, k))


def test_cuts_of_all_levels_at_once_equal_cuts_one_level_at_a_time():
    # given: a merge hierarchy
    rng = np.random.default_rng(9)
    X, C = random_graph(rng, 40)
    p = np.full(40, 1 / 40)
    merges = graphs._ward_merges(graphs._embedding_distances(X, C, p, 0.5), p)
    # when: every level in one pass, and each level on its own
    together = graphs._cuts(merges, 40, [3, 17, 5, 39])
    # then: the same labels, ordered by each cluster's smallest node
    for k in (3, 5, 17, 39):
        alone = graphs._cuts(merges, 40, [k])[k]
        np.testing.assert_array_equal(together[k], alone)
        first_of_label = [int(np.flatnonzero(alone == label)[0]) for label in range(k)]
        assert first_of_label == sorted(first_of_label)


@pytest.mark.parametrize(("n", "k"), [(1, 1), (9, 4), (50, 50), (64, 7)])
def test_cluster_sums_equal_the_dense_membership_products(n, k):
    # given: any weights, a non-symmetric structure and a labelling with every cluster used
    rng = np.random.default_rng(n + k)
    X, C, w = rng.normal(size=(n, 3)), rng.random((n, n)), rng.uniform(0.0, 2.0, n)
    mapping = rng.permutation(np.concatenate([np.arange(k), rng.integers(0, k, n - k)]))
    S = np.zeros((n, k))
    S[np.arange(n), mapping] = 1.0
    # when
    W, F, T = graphs._cluster_sums(X, C, w, mapping, k)
    # then: S^T w, (S w)^T X and (S w)^T C (S w)
    Sw = S * w[:, None]
    np.testing.assert_allclose(W, S.T @ w, rtol=1e-12)
    np.testing.assert_allclose(F, Sw.T @ X, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(T, Sw.T @ C @ Sw, rtol=1e-12)


def test_coarsening_refuses_inputs_whose_distances_overflow():
    # given: finite features so large that the clustering embedding's products overflow
    X = np.array([[0.0], [1e200], [2e200], [3.0]])
    # when / then: a clear error, not a corrupted hierarchy
    with pytest.raises(ValueError, match="overflow"):
        coarsen(X, np.zeros((4, 4)), None, 2)


BIG = 1.5e308  # finite; the Lance-Williams update of a merge with it overflows


@pytest.mark.parametrize(
    ("dist2", "message"),
    [
        ([[0.0, 1.0, np.inf], [1.0, 0.0, 2.0], [np.inf, 2.0, 0.0]], "not finite"),
        ([[0.0, BIG, BIG], [BIG, 0.0, BIG], [BIG, BIG, 0.0]], "not finite"),
        ([[0.0, 1.0, 3.0], [3.0, 0.0, 1.0], [1.0, 3.0, 0.0]], "does not close"),  # not symmetric
    ],
)
def test_compiled_ward_refuses_costs_it_cannot_order(dist2, message):
    from kernels import hierarchy

    with pytest.raises(ValueError, match=message):
        hierarchy.ward_merges(np.array(dist2), np.ones(3))


def test_compiled_cuts_and_sums_refuse_out_of_range_input():
    from kernels import hierarchy

    pairs = np.array([[0, 1], [0, 2]])
    with pytest.raises(ValueError, match="k must lie"):
        hierarchy.cut_labels(pairs, 3, 0)
    with pytest.raises(ValueError, match="keep < gone"):
        hierarchy.cut_labels(np.array([[1, 0], [0, 2]]), 3, 1)
    X, C, w = np.ones((3, 1)), np.ones((3, 3)), np.ones(3)
    with pytest.raises(ValueError, match="labels must lie"):
        hierarchy.cluster_sums(X, C, w, np.array([0, 1, 2]), 2)
    with pytest.raises(ValueError, match="must agree"):
        hierarchy.cluster_sums(X, C[:2], w, np.array([0, 1, 1]), 2)
