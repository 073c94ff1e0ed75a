"""The tie test that sends exact pairs to POT's own arithmetic (``kernels.fgw._ties``)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.fgw._ties import TIE_FRACTION, float32_repeats, repeats_values


def test_tie_test_counts_repeats() -> None:
    # given: continuous costs with one stray repeat, and categorical costs
    rng = np.random.default_rng(42)
    stray = rng.random((40, 40))
    stray[3, 5] = stray[3, 9]
    labels = (rng.integers(0, 3, 40)[:, None] != rng.integers(0, 3, 40)[None, :]).astype(float)
    tiny = np.array([[0.0, 1.0], [1.0, 1.0]])
    # when
    hits = repeats_values([stray, labels, tiny, rng.random((40, 40))])
    # then: a stray repeat is not tie-prone, labels and any repeat in a tiny cost are
    assert hits == [False, True, True, False]


def _repeats_by_definition(M: np.ndarray) -> bool:
    rows, cols = np.sort(M, axis=1), np.sort(M, axis=0)
    repeats = np.count_nonzero(rows[:, 1:] == rows[:, :-1]) + np.count_nonzero(cols[1:] == cols[:-1])
    return bool(repeats >= max(1.0, TIE_FRACTION * M.size))


def test_tie_test_float32_screen_agrees_with_definition() -> None:
    # given: costs whose values collide only once rounded to float32 (1e-12 apart or
    # beyond its range), and costs with exact repeats in rows and columns
    rng = np.random.default_rng(7)
    costs = []
    for k in range(24):
        M = rng.random((32, 32))
        if k % 3 == 0:  # float32-only collisions: many near-equal values
            M[:, :16] = M[:, :1] + 1e-12 * np.arange(1, 17)
        elif k % 3 == 1:  # exact repeats, some above and some below the threshold
            M[:k, 4] = M[0, 3]
        else:  # beyond float32's range: all inf once rounded
            M[:, :12] = 1e300 * (1.0 + rng.random((32, 12)))
        costs.append(M)
    # when
    hits = repeats_values(costs)
    # then: the same verdict as counting row and column repeats in float64
    assert hits == [_repeats_by_definition(M) for M in costs]
    assert not any(hits[0::3]) and not any(hits[2::3])  # float32-only collisions cleared
    assert any(hits[1::3]) and not all(hits[1::3])


def sorted_repeats(M: np.ndarray) -> int:
    values = np.sort(M.ravel())
    return int(np.count_nonzero(values[1:] == values[:-1]))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(1, 3), st.integers(1, 40), st.integers(1, 40)),
    distinct=st.sampled_from([2, 7, 1000, 0]),
)
def test_float32_repeats_count_what_a_sort_counts(seed, shape, distinct):
    # given: costs from few to all-distinct values, with signed zeros, NaN, infinities
    # and values that only collide once rounded to float32 (as the tie screen rounds them)
    rng = np.random.default_rng(seed)
    if distinct:
        A = rng.integers(0, distinct, shape).astype(np.float64) - distinct // 2
    else:
        A = rng.normal(size=shape)
    specials = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e300, 1.0, 1.0 + 1e-12])
    mask = rng.random(shape) < 0.1
    A[mask] = rng.choice(specials, mask.sum())
    with np.errstate(over="ignore"):
        A = A.astype(np.float32)
    # when
    counts = float32_repeats(A)
    # then
    assert counts.tolist() == [sorted_repeats(M) for M in A]


def test_the_package_names_the_same_fraction() -> None:
    import kernels.fgw

    assert kernels.fgw.TIE_FRACTION == TIE_FRACTION
