"""The ``solver`` switch of ``fgw`` / ``fgw_batch``: "reference" and "compiled" agree, "auto"
takes the compiled solvers exactly where they apply, "compiled" names what it refuses."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from kernels.fgw import fgw, fgw_batch
from kernels.fgw._ties import repeats_values
from kernels.graphs import coarsen_levels
from tests.kernels.conftest import random_graph, random_problem
from tests.kernels.fgw.conftest import MARGINAL_ATOL, SAME_RTOL, numpy_plan, rel


def compiled_exact_pairs(rng: np.random.Generator, kind: str) -> list[tuple]:
    """Pairs the compiled exact solver takes: uniform n == m pairs of several sizes,
    and graphs against their coarsenings (q = cluster sizes / n: capacities)."""
    problems = [random_problem(rng, n, n, kind=kind) for n in (3, 8, 8, 8, 17, 30, 30)]
    M, C1, C2, _, _ = random_problem(rng, 8, 8, kind=kind)
    problems.append((M, C1, C2, None, None))
    for n, k in ((20, 3), (20, 7), (31, 11)):
        C = random_graph(rng, n, kind)
        X = rng.normal(size=(n, 2))
        (c,) = coarsen_levels(X, C, np.full(n, 1 / n), [k])
        problems.append((((X[:, None] - c.features[None]) ** 2).sum(-1), C, c.structure, None, c.weights))
    return problems


@pytest.mark.parametrize("kind", ["sp", "adj"])
def test_compiled_and_reference_exact_solvers_agree(kind: str) -> None:
    # given: pairs both solvers take, none of them tie-prone (where the reference
    # follows POT's own arithmetic instead)
    problems = compiled_exact_pairs(np.random.default_rng(41), kind)
    assert not any(repeats_values([prob[0] for prob in problems]))
    # when
    compiled = fgw_batch(problems, alpha=0.4, solver="compiled", return_plan=True)
    reference = fgw_batch(problems, alpha=0.4, solver="reference", return_plan=True)
    # then: the same iterates, values and plans
    for prob, a, b in zip(problems, compiled, reference, strict=True):
        assert rel(a.distance, b.distance) <= SAME_RTOL
        assert a.n_iter == b.n_iter and a.converged == b.converged
        np.testing.assert_allclose(numpy_plan(a), numpy_plan(b), atol=1e-9)
        plan = numpy_plan(a)
        p = np.full(plan.shape[0], 1 / plan.shape[0]) if prob[3] is None else prob[3]
        np.testing.assert_allclose(plan.sum(axis=1), p, rtol=0, atol=MARGINAL_ATOL)


@pytest.mark.parametrize("kind", ["sp", "adj"])
def test_auto_takes_the_compiled_exact_solver_exactly_where_it_applies(kind: str) -> None:
    # given: the compiled solver's pairs mixed in one batch with pairs it cannot take
    # (non-uniform weights, n < m, a non-symmetric structure) and a tie-prone one
    rng = np.random.default_rng(42)
    eligible = compiled_exact_pairs(rng, kind)
    M, C1, C2, p, q = random_problem(rng, 8, 8, kind=kind)
    labels = (rng.integers(0, 3, 8)[:, None] != rng.integers(0, 3, 8)[None, :]).astype(float)
    others = [
        random_problem(rng, 8, 8, kind=kind, uniform=False),
        random_problem(rng, 9, 11, kind=kind),
        (M, C1 + np.triu(rng.random((8, 8)) * 0.01, 1), C2, p, q),
        (labels, C1, C2, p, q),
    ]
    problems = eligible + others
    tie_prone = repeats_values([prob[0] for prob in problems])  # POT's arithmetic under auto too
    compiles = [k < len(eligible) and not tie_prone[k] for k in range(len(problems))]
    assert sum(compiles) >= 8 and tie_prone[-1]
    # when
    auto = fgw_batch(problems, alpha=0.4, return_plan=True)
    compiled = fgw_batch(eligible, alpha=0.4, solver="compiled", return_plan=True)
    reference = fgw_batch(problems, alpha=0.4, solver="reference", return_plan=True)
    # then: the compiled solver's results, bit for bit, for every pair it takes...
    for k, (a, r) in enumerate(zip(auto, reference, strict=True)):
        if compiles[k]:
            assert a.distance == compiled[k].distance and a.n_iter == compiled[k].n_iter
            np.testing.assert_array_equal(numpy_plan(a), numpy_plan(compiled[k]))
        else:  # ... and the reference solver's for the others
            assert rel(a.distance, r.distance) <= SAME_RTOL and a.n_iter == r.n_iter
        if tie_prone[k]:  # (solved alone, in POT's arithmetic, by both)
            assert a.distance == r.distance
    # (bits the reference solver does not reproduce, so the first check can fail)
    assert any(auto[k].distance != reference[k].distance for k in range(len(problems)) if compiles[k])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("non-uniform", "do not make the linear subproblems assignments"),
        ("wider", "m <= n"),
        ("asymmetric", "not exactly symmetric"),
        ("nan", "NaN or infinity"),
    ],
)
def test_compiled_exact_names_the_pair_and_why_it_cannot_take_it(change: str, reason: str) -> None:
    rng = np.random.default_rng(45)
    good = random_problem(rng, 8, 8)
    M, C1, C2, p, q = random_problem(rng, 8, 8)
    bad = {
        "non-uniform": random_problem(rng, 8, 8, uniform=False),
        "wider": random_problem(rng, 6, 9),
        "asymmetric": (M, C1 + np.triu(np.full((8, 8), 0.01), 1), C2, p, q),
        "nan": (np.where(np.eye(8) > 0, np.nan, M), C1, C2, p, q),
    }[change]
    with pytest.raises(ValueError, match=rf"problem 1 \(exact\): .*{reason}"):
        fgw_batch([good, bad], solver="compiled")


def test_compiled_entropic_refuses_zero_weights() -> None:
    M, C1, C2, p, q = random_problem(np.random.default_rng(46), 8, 8, uniform=False)
    p[0] = 0.0
    p /= p.sum()
    with pytest.raises(ValueError, match=r"problem 0 \(entropic\): a weight is zero"):
        fgw(M, C1, C2, p, q, method="entropic", solver="compiled")


def test_compiled_refuses_float32_and_other_backends_by_name() -> None:
    prob = random_problem(np.random.default_rng(47), 6, 6)
    with pytest.raises(ValueError, match="float64"):
        fgw(*(a.astype(np.float32) for a in prob), solver="compiled")
    with pytest.raises(ValueError, match="backend is 'torch'"):
        fgw(*prob, solver="compiled", backend="torch")


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_compiled_refuses_torch_inputs_by_name() -> None:
    import torch

    prob = random_problem(np.random.default_rng(48), 6, 6)
    with pytest.raises(ValueError, match="backend is 'torch'"):
        fgw(*(torch.as_tensor(a) for a in prob), solver="compiled")


def test_compiled_checks_inputs_as_the_reference_does() -> None:
    M, C1, C2, p, q = random_problem(np.random.default_rng(49), 4, 5)
    for solver in ("reference", "compiled"):
        with pytest.raises(ValueError, match="shapes must be"):
            fgw(M.T, C1, C2, solver=solver)
        with pytest.raises(ValueError, match="same mass"):
            fgw(M, C1, C2, p, 2 * q, solver=solver)
        with pytest.raises(ValueError, match="weights must be finite"):
            fgw(M, C1, C2, np.full(4, np.inf), q, solver=solver)


def test_auto_backend_keeps_compiled_calls_on_the_host() -> None:
    # numpy inputs with backend="auto" would go to CuPy under the reference solver on
    # a CUDA machine; the compiled solver keeps them, and returns numpy plans
    prob = random_problem(np.random.default_rng(50), 7, 7)
    res = fgw(*prob, solver="compiled", return_plan=True)
    assert isinstance(res.plan, np.ndarray) and res.converged
