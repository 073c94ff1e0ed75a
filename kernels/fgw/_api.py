"""The public entry points :func:`fgw` and :func:`fgw_batch`, and which solver takes each pair.

The solver modules import numba (directly or through the line search), so they are
imported here only when a call needs them: a process that imports :mod:`kernels.fgw`
(or :mod:`kernels.rd`, for its knee) without solving does not load numba.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import is_array_api_obj

from kernels import backend as bk
from kernels.fgw import _entropic
from kernels.fgw._batch import (
    MAX_BATCH_ENTRIES,
    FGWResult,
    chunks,
    host_problems,
    make_batch,
    n_nodes,
    on_gpu,
    resolve,
    result_dtype,
)
from kernels.fgw._validation import check_shapes, check_weights, validate_options

Problem = tuple[Any, Any, Any, Any, Any]


def fgw_batch(
    problems: Sequence[Problem],
    *,
    alpha: float = 0.5,
    method: str = "exact",
    epsilon: float = 1e-2,
    max_iter: int | None = None,
    tol: float = 1e-9,
    backend: str | ModuleType = "auto",
    return_plan: bool = False,
    solver: str = "auto",
    max_batch_entries: int | None = None,
) -> list[FGWResult]:
    r"""FGW for many pairs in vectorised and compiled calls; the same results as
    :func:`fgw` pair by pair.

    Parameters
    ----------
    problems : sequence of (M, C1, C2, p, q)
        Shapes ``(n_k, m_k)``, ``(n_k, n_k)``, ``(m_k, m_k)``, ``(n_k,)``, ``(m_k,)``;
        ``p`` or ``q`` may be ``None`` (uniform). Sizes may differ between pairs.
    alpha, method, epsilon, max_iter, tol, backend, return_plan, solver
        As in :func:`fgw`.
    max_batch_entries : int, optional
        Largest padded chunk of the reference solvers, in entries ``B * N * M``;
        :data:`~kernels.fgw.MAX_BATCH_ENTRIES` by default (see there for the cost).
        Changes the speed, not the values beyond round-off.

    Returns
    -------
    list of FGWResult
        In the order of ``problems``.

    Raises
    ------
    ValueError
        For an option out of range, inputs whose shapes or weights are invalid, or,
        with ``solver="compiled"``, a pair the compiled solvers cannot take (the
        message names the pair and why).

    Notes
    -----
    The reference solvers sort the pairs by size and cut them into chunks of at most
    ``max_batch_entries`` padded entries; inside a chunk every pair is padded to the
    largest ``n`` and ``m`` with zero weights and zero costs (zero-weight rows and
    columns carry no mass, so the padding changes no value). Tensor products, line
    searches and Sinkhorn iterations run over the whole chunk at once (``matmul``
    over a batch axis); only the exact linear subproblems are solved pair by pair,
    on the host. Finished pairs leave the working set. The compiled solvers group
    the pairs by shape and spread them over threads.
    """
    max_iter = validate_options(method, solver, alpha, epsilon, max_iter)
    if max_batch_entries is not None and not int(max_batch_entries) >= 1:
        raise ValueError(f"max_batch_entries must be a positive integer; got {max_batch_entries}")
    alpha, epsilon, tol = float(alpha), float(epsilon), float(tol)
    problems = list(problems)
    if not problems:
        return []
    flat = [a for prob in problems for a in prob]
    if solver == "compiled":
        return _solve_compiled(problems, flat, method, alpha, epsilon, max_iter, tol, backend, return_plan)
    xp, device = resolve(flat, backend)
    dtype = result_dtype(flat)
    results: list[FGWResult | None] = [None] * len(problems)
    rest = list(range(len(problems)))
    compiled_ok = solver == "auto" and dtype == "float64" and bk.backend_name(xp) == "numpy"
    if method == "exact":
        host = host_problems(problems)
        _solve_tie_prone(problems, host, rest, results, xp, dtype, device, alpha, max_iter, tol, return_plan)
        rest = [k for k in rest if results[k] is None]
        if compiled_ok:
            from kernels.fgw import _exact_compiled  # numba: loaded only by processes that solve

            _exact_compiled.solve_problems(host, rest, results, alpha, max_iter, tol, return_plan)
            rest = [k for k in rest if results[k] is None]
    elif compiled_ok:
        from kernels.fgw import _entropic_compiled  # numba: loaded only by processes that solve

        host = host_problems(problems)
        _entropic_compiled.solve_problems(host, rest, results, alpha, epsilon, max_iter, tol, return_plan)
        rest = [k for k in rest if results[k] is None]
    if max_batch_entries is None:
        max_batch_entries = MAX_BATCH_ENTRIES["gpu" if on_gpu(xp, device) else method]
    sizes = [(n_nodes(problems[k][1]), n_nodes(problems[k][2])) for k in rest]
    for sub in chunks(sizes, int(max_batch_entries)):
        chunk = [rest[i] for i in sub]
        batch = make_batch([problems[k] for k in chunk], xp, dtype, device)
        if method == "exact":
            from kernels.fgw import _exact  # numba (the line search)

            out = _exact.solve_batch(batch, alpha, max_iter, tol, return_plan)
        else:
            out = _entropic.solve_batch(batch, alpha, epsilon, max_iter, tol, return_plan)
        for k, res in zip(chunk, out, strict=True):
            results[k] = res
    return results  # type: ignore[return-value]


def _solve_tie_prone(
    problems: list[Problem],
    host: list[tuple[Any, ...]],
    rest: list[int],
    results: list[FGWResult | None],
    xp: ModuleType,
    dtype: str,
    device: Any,
    alpha: float,
    max_iter: int,
    tol: float,
    return_plan: bool,
) -> None:
    """Solve the exact pairs of ``rest`` whose linear subproblems are tie-prone (no
    feature term, or one that repeats values: :mod:`kernels.fgw._ties`) in POT's own
    arithmetic, so that they land where POT does."""
    from kernels.fgw import _exact, _ties  # numba: loaded only by processes that solve

    tie_prone = [
        k
        for k, hit in zip(rest, _ties.repeats_values([host[k][0] for k in rest]), strict=True)
        if hit or alpha == 1.0
    ]
    for k in tie_prone:
        M, C1, C2, p, q = host[k]
        batch = make_batch([problems[k]], xp, dtype, device)  # validates, fills weights
        dist, plan, n_iter, ok = _exact.cg_pot_order(
            M, C1, C2, batch.p_host[0], batch.q_host[0], alpha, max_iter, tol
        )
        results[k] = FGWResult(
            distance=dist,
            plan=bk.asarray_on(plan.astype(dtype), xp, device=device) if return_plan else None,
            n_iter=n_iter,
            converged=ok,
        )


def _solve_compiled(
    problems: list[Problem],
    flat: list[Any],
    method: str,
    alpha: float,
    epsilon: float,
    max_iter: int,
    tol: float,
    backend: str | ModuleType,
    return_plan: bool,
) -> list[FGWResult]:
    """Every pair on the compiled solver of ``method``, or a ``ValueError`` naming the
    first pair it cannot take and why."""
    _check_compiled_backend(flat, backend)
    host = host_problems(problems)
    for M, C1, C2, p, q in host:  # the reference solvers' checks, with their messages
        n, m = len(C1), len(C2)
        p = np.full(n, 1.0 / n) if p is None else p
        q = np.full(m, 1.0 / m) if q is None else q
        check_shapes(M, C1, C2, p, q)
        check_weights(p[None], q[None])
    results: list[FGWResult | None] = [None] * len(problems)
    everything = list(range(len(problems)))
    if method == "exact":
        from kernels.fgw import _exact_compiled

        refused = _exact_compiled.solve_problems(host, everything, results, alpha, max_iter, tol, return_plan)
    else:
        from kernels.fgw import _entropic_compiled

        refused = _entropic_compiled.solve_problems(
            host, everything, results, alpha, epsilon, max_iter, tol, return_plan
        )
    if refused:
        k = min(refused)
        raise ValueError(
            f"solver='compiled' cannot solve problem {k} ({method}): {refused[k]}; "
            "solver='auto' or 'reference' can"
        )
    return results  # type: ignore[return-value]


def _check_compiled_backend(flat: list[Any], backend: str | ModuleType) -> None:
    """The compiled solvers run on float64 numpy arrays on the host: refuse any other
    namespace or dtype, by name. ``backend="auto"`` keeps numpy inputs on the host."""
    if isinstance(backend, str) and backend == "auto":
        native = [a for a in flat if not isinstance(a, np.ndarray) and is_array_api_obj(a)]
        name = bk.backend_name(bk.get_backend(native[0])) if native else "numpy"
    elif isinstance(backend, str):
        name = backend.lower()
    else:
        name = bk.backend_name(backend)
    if name != "numpy":
        raise ValueError(
            f"solver='compiled' runs on numpy arrays on the host; this call's backend is {name!r} "
            "(solver='auto' or 'reference' can)"
        )
    if result_dtype(flat) != "float64":
        raise ValueError(
            "solver='compiled' computes in float64; every input here is float32 "
            "(solver='auto' or 'reference' can)"
        )


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
    solver: str = "auto",
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
    solver : {"auto", "reference", "compiled"}
        Which implementation solves the pair (see :mod:`kernels.fgw`).
        ``"reference"``: the batched array-API solvers, any backend and dtype.
        ``"compiled"``: the compiled host solvers, float64 numpy only; a
        ``ValueError`` names why when a pair cannot take them (``"auto"`` as
        ``backend`` then stays on the host). ``"auto"``: the compiled solvers where
        they apply, the reference elsewhere; the same values either way up to
        round-off.

    Returns
    -------
    FGWResult
        ``distance``, ``plan`` (or ``None``), ``n_iter``, ``converged``.
        Computed in float32 when every input is float32, else float64.

    Raises
    ------
    ValueError
        For an option out of range, inconsistent shapes, weights that are negative,
        not finite or of different masses, or (``solver="compiled"``) a pair the
        compiled solvers cannot take.

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
        solver=solver,
    )[0]
