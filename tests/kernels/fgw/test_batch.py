"""fgw_batch: many pairs of different sizes in one call, the same results as one by one."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.fgw import fgw, fgw_batch
from tests.kernels.conftest import random_graph, random_problem
from tests.kernels.fgw.conftest import EXACT_RTOL, SAME_RTOL, pot_exact, rel


@pytest.mark.parametrize("method", ["exact", "entropic"])
def test_batch_equals_one_by_one(method: str) -> None:
    rng = np.random.default_rng(12)
    problems = [
        random_problem(rng, n, m, kind=kind, uniform=u)
        for n, m, kind, u in [
            (5, 9, "sp", True),
            (12, 12, "adj", True),
            (20, 7, "sp", False),
            (3, 3, "sp", True),
            (16, 16, "sp", False),
        ]
    ]
    problems.append((problems[0][0], problems[0][1], problems[0][2], None, None))
    batch = fgw_batch(problems, method=method, epsilon=5e-2, return_plan=True)
    for prob, b in zip(problems, batch, strict=True):
        one = fgw(*prob, method=method, epsilon=5e-2, return_plan=True)
        assert rel(b.distance, one.distance) <= SAME_RTOL
        assert b.converged == one.converged
        if method == "exact":  # entropic: batch-mates may tighten a projection, shifting n_iter
            assert b.n_iter == one.n_iter
        assert b.plan.shape == one.plan.shape
        np.testing.assert_allclose(b.plan, one.plan, atol=1e-9)


@pytest.mark.parametrize("method", ["exact", "entropic"])
def test_zero_weight_padding_changes_nothing(method: str) -> None:
    # given: the same problem with extra nodes of zero weight and arbitrary structure
    rng = np.random.default_rng(13)
    M, C1, C2, p, q = random_problem(rng, 10, 8, uniform=False)
    extra_n, extra_m = 4, 6
    Mp = rng.random((10 + extra_n, 8 + extra_m))
    Mp[:10, :8] = M
    C1p = random_graph(rng, 10 + extra_n, "sp")
    C1p[:10, :10] = C1
    C2p = random_graph(rng, 8 + extra_m, "sp")
    C2p[:8, :8] = C2
    pp, qp = np.concatenate([p, np.zeros(extra_n)]), np.concatenate([q, np.zeros(extra_m)])
    # when
    plain = fgw(M, C1, C2, p, q, method=method, epsilon=5e-2)
    padded = fgw(Mp, C1p, C2p, pp, qp, method=method, epsilon=5e-2, return_plan=True)
    # then
    assert rel(padded.distance, plain.distance) <= SAME_RTOL
    assert np.all(padded.plan[10:, :] == 0) and np.all(padded.plan[:, 8:] == 0)


@pytest.mark.parametrize("method", ["exact", "entropic"])
def test_chunking_changes_nothing(method: str) -> None:
    # given: pairs the reference solver batches (asked for by name: "auto" would send
    # the entropic ones to the compiled solver, which does not chunk)
    rng = np.random.default_rng(15)
    problems = [random_problem(rng, int(n), int(n) + 2) for n in rng.integers(3, 14, size=12)]
    options = {"method": method, "epsilon": 5e-2, "solver": "reference"}
    # when
    whole = fgw_batch(problems, **options)
    chunked = fgw_batch(problems, max_batch_entries=300, **options)  # chunks of 1-3 pairs
    # then
    for a, b in zip(whole, chunked, strict=True):
        assert rel(a.distance, b.distance) <= SAME_RTOL
        if method == "exact":  # (entropic: batch-mates may tighten a projection)
            assert a.n_iter == b.n_iter


def test_chunk_size_is_checked() -> None:
    prob = random_problem(np.random.default_rng(16), 4, 4)
    with pytest.raises(ValueError, match="max_batch_entries"):
        fgw_batch([prob], max_batch_entries=0)


def test_batch_of_many_pairs_one_call_matches_pot() -> None:
    rng = np.random.default_rng(14)
    problems = [random_problem(rng, 16, 16, kind="adj" if k % 2 else "sp") for k in range(40)]
    results = fgw_batch(problems)
    refs = [pot_exact(*prob, alpha=0.5) for prob in problems]
    bad = sum(rel(r.distance, ref) > EXACT_RTOL for r, ref in zip(results, refs, strict=True))
    assert bad <= 1
    assert fgw_batch([]) == []


def test_invalid_inputs_are_rejected() -> None:
    M, C1, C2, p, q = random_problem(np.random.default_rng(0), 4, 5)
    with pytest.raises(ValueError, match="shapes"):
        fgw(M.T, C1, C2)
    with pytest.raises(ValueError, match="same mass"):
        fgw(M, C1, C2, p, 2 * q)
    with pytest.raises(ValueError, match="non-negative"):
        fgw(M, C1, C2, -p, q)
    with pytest.raises(ValueError, match="method"):
        fgw(M, C1, C2, method="sinkhorn")
    with pytest.raises(ValueError, match="alpha"):
        fgw(M, C1, C2, alpha=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        fgw(M, C1, C2, method="entropic", epsilon=0.0)
    with pytest.raises(ValueError, match="solver must be one of"):
        fgw(M, C1, C2, solver="fast")


def test_lists_and_defaults() -> None:
    C = [[0.0, 1.0], [1.0, 0.0]]
    res = fgw([[0.0, 1.0], [1.0, 0.0]], C, C)
    assert res.distance == 0.0 and res.plan is None and res.converged
