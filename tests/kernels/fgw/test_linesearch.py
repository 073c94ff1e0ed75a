"""The one line search of every exact solver (``kernels.fgw._linesearch``) against POT's."""

from __future__ import annotations

import numpy as np
from ot.optim import solve_1d_linesearch_quad as pot_step

from kernels.fgw._linesearch import solve_1d_linesearch_quad, solve_1d_linesearch_quad_batch

# convex (a > 0) with the minimiser inside, below 0 and above 1; concave and linear
# (a <= 0) with either end better; ties; and what overflow makes of the coefficients
VALUES = [-3.0, -1.0, -0.5, -1e-300, 0.0, 1e-300, 0.25, 1.0, 2.0, 1e300, np.inf, -np.inf, np.nan]


def test_steps_are_pots_for_every_case():
    a, b = (x.ravel() for x in np.meshgrid(VALUES, VALUES))
    with np.errstate(all="ignore"):
        expected = [pot_step(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    scalar = [solve_1d_linesearch_quad(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    batch = solve_1d_linesearch_quad_batch(a, b)
    np.testing.assert_array_equal(scalar, expected)
    np.testing.assert_array_equal(batch, expected)


def test_steps_stay_in_the_unit_interval_and_minimise():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=500), rng.normal(size=500)
    t = solve_1d_linesearch_quad_batch(a, b)
    assert ((t >= 0) & (t <= 1)).all()
    grid = np.linspace(0.0, 1.0, 1001)
    best = (a[:, None] * grid**2 + b[:, None] * grid).min(axis=1)
    assert (a * t**2 + b * t <= best + 1e-12).all()
