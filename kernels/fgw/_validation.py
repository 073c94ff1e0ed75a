"""Checks of the options and inputs of :func:`kernels.fgw.fgw_batch`, shared by every solver."""

from __future__ import annotations

import numpy as np

METHODS = ("exact", "entropic")
"""The problems solved: POT's ``fused_gromov_wasserstein2`` and
``entropic_fused_gromov_wasserstein2``."""

SOLVERS = ("auto", "reference", "compiled")
"""The implementations :func:`kernels.fgw.fgw_batch` may use (see :mod:`kernels.fgw`)."""

DEFAULT_MAX_ITER = {"exact": 10_000, "entropic": 1_000}
"""Outer-iteration caps, POT's defaults (``max_iter=1e4`` for CG, ``1000`` for PGD)."""

SYMMETRY_ATOL = 1e-10
SYMMETRY_RTOL = 1e-5
"""POT's symmetry test, ``np.allclose(C, C.T, atol=1e-10)`` (default ``rtol``)."""

MASS_ATOL = 1e-6
"""Largest accepted difference between the total masses of ``p`` and ``q``
(POT's ``emd`` asserts the same to 6 decimals)."""


def validate_options(method: str, solver: str, alpha: float, epsilon: float, max_iter: int | None) -> int:
    """Check the scalar options; return ``max_iter`` with its default filled in.

    Raises
    ------
    ValueError
        Naming the option that is out of range.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}; got {solver!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
    if method == "entropic" and not epsilon > 0:
        raise ValueError(f"epsilon must be positive; got {epsilon}")
    max_iter = DEFAULT_MAX_ITER[method] if max_iter is None else int(max_iter)
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1; got {max_iter}")
    return max_iter


def check_shapes(M: np.ndarray, C1: np.ndarray, C2: np.ndarray, p: np.ndarray, q: np.ndarray) -> None:
    """``M`` ``(n, m)``, ``C1`` ``(n, n)``, ``C2`` ``(m, m)``, ``p`` ``(n,)``, ``q`` ``(m,)``,
    ``n, m >= 1``; else ``ValueError``."""
    n, m = M.shape if M.ndim == 2 else (-1, -1)
    if M.ndim != 2 or C1.shape != (n, n) or C2.shape != (m, m):
        raise ValueError(
            f"shapes must be M (n, m), C1 (n, n), C2 (m, m); got {M.shape}, {C1.shape}, {C2.shape}"
        )
    if p.shape != (n,) or q.shape != (m,):
        raise ValueError(f"weights must have shapes ({n},) and ({m},); got {p.shape}, {q.shape}")
    if n == 0 or m == 0:
        raise ValueError("graphs must have at least one node")


def check_weights(p: np.ndarray, q: np.ndarray) -> None:
    """Weights of a padded batch, ``p`` ``(B, N)`` and ``q`` ``(B, M)``: finite,
    non-negative, equal masses per pair within :data:`MASS_ATOL`; else ``ValueError``."""
    if not (np.isfinite(p).all() and np.isfinite(q).all()):
        raise ValueError("weights must be finite")
    if (p < 0).any() or (q < 0).any():
        raise ValueError("weights must be non-negative")
    gap = np.abs(p.sum(axis=1) - q.sum(axis=1))
    if (gap > MASS_ATOL).any():
        k = int(np.argmax(gap))
        raise ValueError(f"p and q must have the same mass; got {p[k].sum()} and {q[k].sum()} (pair {k})")


def is_symmetric_stack(C: np.ndarray) -> bool:
    """POT's test, ``np.allclose(C, C.T, atol=1e-10)``, over a whole stack ``(B, N, N)``."""
    Ct = np.swapaxes(C, 1, 2)
    if np.array_equal(C, Ct):
        return True
    return bool(np.all(np.abs(C - Ct) <= SYMMETRY_ATOL + SYMMETRY_RTOL * np.abs(Ct)))
