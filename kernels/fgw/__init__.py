r"""Fused Gromov-Wasserstein (FGW) distances with the square loss, single and batched.

For two attributed graphs with structure matrices :math:`C_1` (``n x n``),
:math:`C_2` (``m x m``), node weights :math:`p, q` and a feature cost
:math:`M` (``n x m``), the FGW objective of a coupling :math:`T \in \Pi(p, q)` is

.. math::
    E(T) = (1 - \alpha) \langle M, T \rangle
           + \alpha \sum_{i,j,k,l} (C_{1,ik} - C_{2,jl})^2 \, T_{ij} T_{kl}

(Vayer et al. 2019), evaluated without the 4-way tensor through the decomposition of
Peyré et al. (2016), Prop. 1 (:mod:`kernels.fgw._square_loss`). Two problems, the
same as POT 0.9.7's:

``method="exact"``
    ``ot.gromov.fused_gromov_wasserstein2(..., loss_fun="square_loss")``: conditional
    gradient with an exact linear OT subproblem per iteration and the closed-form
    line search.
``method="entropic"``
    ``ot.gromov.entropic_fused_gromov_wasserstein2(..., solver="PGD")``: projected
    gradient with Sinkhorn projections, iterated to a fixed point; the value returned
    excludes the entropy.

Each problem has a reference solver, written once against the array API for any
backend (numpy, torch, CuPy, ...) and dtype, and a compiled one beside it (numba, on
the host, float64 numpy) for the pairs it can take. The ``solver`` option of
:func:`fgw` and :func:`fgw_batch` chooses:

==============  ===============================================  ==========================================
module          algorithm                                        ``solver``
==============  ===============================================  ==========================================
``_exact``      CG, a padded batch of pairs in one namespace;    ``"reference"``; ``"auto"`` for the pairs
                and CG in POT's own arithmetic for pairs whose   the compiled solver does not take (the
                subproblems are tie-prone (``_ties``)            tie-prone ones: under both)
``_exact_       CG with the subproblems solved as assignments,   ``"compiled"``; ``"auto"`` for float64
compiled``      one pair per compiled loop: uniform ``p``,       numpy pairs it can take that are not
                ``q`` whole multiples of ``p``'s entries         tie-prone
                (``n == m``, or a graph and its coarsening),
                exactly symmetric structures
``_entropic``   PGD with warm-started, stabilised Sinkhorn,      ``"reference"``; ``"auto"`` for the rest
                a padded batch in one namespace
``_entropic_    the same PGD, one pair per compiled loop:        ``"compiled"``; ``"auto"`` for float64
compiled``      positive weights, exactly symmetric structures   numpy pairs it can take
==============  ===============================================  ==========================================

Shared pieces: ``_linesearch`` (the one line search of every exact solver),
``_batch`` (problems to arrays and results back), ``_validation`` (checks),
:mod:`kernels._numba` (the compiled modules' runtime). Every solver follows POT's
iterates; where two of them take the same pair their values agree to round-off
(exact) or to the fixed-point tolerance (entropic).

References
----------
Vayer, Chapel, Flamary, Tavenard, Courty. "Optimal Transport for structured data with
application on graphs", ICML 2019.
Peyré, Cuturi, Solomon. "Gromov-Wasserstein averaging of kernel and distance
matrices", ICML 2016.
Flamary et al. "POT: Python Optimal Transport", JMLR 2021 (``ot.gromov``, ``ot.optim.cg``).
"""

from __future__ import annotations

import importlib
from typing import Any

from kernels.fgw._api import fgw, fgw_batch
from kernels.fgw._batch import MAX_BATCH_ENTRIES, WORKSPACE_MAX_ENTRIES, FGWResult
from kernels.fgw._entropic import (
    ABSORB_LOG_THRESHOLD,
    ANDERSON_DEPTH,
    ANDERSON_REG,
    ANDERSON_RESTART,
    ANDERSON_START,
    FLOAT32_TOL_FLOOR,
    SINKHORN_CHECK_EVERY,
    SINKHORN_FAILURES,
    SINKHORN_INEXACT,
    SINKHORN_MAX_ITER,
    SINKHORN_RETIRE_FRACTION,
    SINKHORN_TOL,
)
from kernels.fgw._validation import (
    DEFAULT_MAX_ITER,
    MASS_ATOL,
    METHODS,
    SOLVERS,
    SYMMETRY_ATOL,
    SYMMETRY_RTOL,
)

_NUMBA_MODULE_CONSTANTS = {
    "CAPACITY_RTOL": "kernels.fgw._exact_compiled",
    "TIE_FRACTION": "kernels.fgw._ties",
}
"""Public constants of modules that load numba, resolved on first access (PEP 562) so
that importing this package does not load numba."""


def __getattr__(name: str) -> Any:
    if name in _NUMBA_MODULE_CONSTANTS:
        return getattr(importlib.import_module(_NUMBA_MODULE_CONSTANTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ABSORB_LOG_THRESHOLD",
    "ANDERSON_DEPTH",
    "ANDERSON_REG",
    "ANDERSON_RESTART",
    "ANDERSON_START",
    "CAPACITY_RTOL",
    "DEFAULT_MAX_ITER",
    "FLOAT32_TOL_FLOOR",
    "FGWResult",
    "MASS_ATOL",
    "MAX_BATCH_ENTRIES",
    "METHODS",
    "SINKHORN_CHECK_EVERY",
    "SINKHORN_FAILURES",
    "SINKHORN_INEXACT",
    "SINKHORN_MAX_ITER",
    "SINKHORN_RETIRE_FRACTION",
    "SINKHORN_TOL",
    "SOLVERS",
    "SYMMETRY_ATOL",
    "SYMMETRY_RTOL",
    "TIE_FRACTION",
    "WORKSPACE_MAX_ENTRIES",
    "fgw",
    "fgw_batch",
]
