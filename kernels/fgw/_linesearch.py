r"""The exact line search of conditional gradient for a quadratic objective.

Along a direction :math:`\Delta = G_c - G` the FGW objective is a quadratic in the
step, :math:`E(G + t\Delta) = E(G) + a t^2 + b t` with

.. math::
    a = -\alpha \langle L(\Delta), \Delta\rangle, \qquad
    b = (1-\alpha)\langle M, \Delta\rangle - 2\alpha \langle L(\Delta), G\rangle

(symmetric structures; :mod:`kernels.fgw._square_loss` for :math:`L`), and the step
is its minimiser over :math:`[0, 1]`. Every exact solver (the batched reference, the
host path in POT's own arithmetic, the compiled path) takes its step from the one
function here, POT's ``ot.optim.solve_1d_linesearch_quad``; they differ only in how
they obtain :math:`a` and :math:`b`.

References
----------
Vayer, Chapel, Flamary, Tavenard, Courty. "Optimal Transport for structured data with
application on graphs", ICML 2019 (Alg. 2).
Flamary et al. "POT: Python Optimal Transport", JMLR 2021 (``ot.optim``).
"""

from __future__ import annotations

import numpy as np

from kernels._numba import jit


@jit
def solve_1d_linesearch_quad(a, b):
    r"""Minimiser over :math:`t \in [0, 1]` of :math:`f(t) = a t^2 + b t`.

    Parameters
    ----------
    a, b : float
        Coefficients (float64).

    Returns
    -------
    float
        :math:`\min(1, \max(0, -b / 2a))` when :math:`a > 0` (convex); else the
        better end point, 1 when :math:`f(1) = a + b < 0`, 0 otherwise. Exactly
        POT's ``solve_1d_linesearch_quad`` (also for NaN: the step is then 0).
    """
    if a > 0:  # convex
        return min(1.0, max(0.0, -b / (2.0 * a)))
    if a + b < 0:  # concave or linear: the better end point
        return 1.0
    return 0.0


@jit
def solve_1d_linesearch_quad_batch(a, b):
    """:func:`solve_1d_linesearch_quad` per pair: ``a``, ``b`` ``(B,)`` float64 -> ``(B,)``."""
    out = np.empty(a.shape[0])
    for k in range(a.shape[0]):
        out[k] = solve_1d_linesearch_quad(a[k], b[k])
    return out


def warm_up() -> None:
    """Compile both forms for calls from Python, or load them from the cache."""
    solve_1d_linesearch_quad(1.0, -1.0)
    solve_1d_linesearch_quad_batch(np.ones(1), -np.ones(1))
