"""Tolerances and POT baselines shared by the FGW tests."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import ot

from kernels import backend as bk
from kernels.fgw import DEFAULT_MAX_ITER, FGWResult

EXACT_RTOL = 1e-7  # the bar: same objective as POT to 1e-7 relative
ENTROPIC_RTOL = 1e-6  # the bar where POT converges
MARGINAL_ATOL = 1e-9
ZERO_ATOL = 1e-12  # "zero" objective: sums of about n^2 terms of size 1e-16
SAME_RTOL = 1e-9  # one code path vs another over the same arithmetic (batching, transposes)
SAME_FIXED_POINT_RTOL = 1e-7  # two entropic solvers, both stopped within tol=1e-9 of one fixed point


def pot_exact(M: np.ndarray, C1: np.ndarray, C2: np.ndarray, p: Any, q: Any, alpha: float) -> float:
    return float(ot.gromov.fused_gromov_wasserstein2(M, C1, C2, p, q, alpha=alpha))


def pot_exact_with_plan(
    M: np.ndarray, C1: np.ndarray, C2: np.ndarray, p: Any, q: Any, alpha: float
) -> tuple[float, np.ndarray]:
    plan, log = ot.gromov.fused_gromov_wasserstein(M, C1, C2, p, q, alpha=alpha, log=True)
    return float(log["fgw_dist"]), plan


def pot_entropic(prob: tuple[np.ndarray, ...], epsilon: float) -> tuple[float, bool]:
    """POT's value and whether it converged: outer loop under ``max_iter`` and plan on
    its marginals (POT's inner Sinkhorn stops at 1000 iterations, converged or not)."""
    M, C1, C2, p, q = prob
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, log = ot.gromov.entropic_fused_gromov_wasserstein2(
            M, C1, C2, p, q, epsilon=epsilon, solver="PGD", log=True
        )
    plan = log["T"]
    outer = len(log["err"]) * 10 < DEFAULT_MAX_ITER["entropic"]
    marginals = max(np.abs(plan.sum(1) - p).sum(), np.abs(plan.sum(0) - q).sum()) < 1e-8
    return float(value), outer and marginals


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), ZERO_ATOL)


def not_worse(ours: float, ref: float) -> bool:
    return ours <= ref + EXACT_RTOL * abs(ref) + ZERO_ATOL


def numpy_plan(res: FGWResult) -> np.ndarray:
    return np.asarray(bk.to_numpy(res.plan), dtype=np.float64)
