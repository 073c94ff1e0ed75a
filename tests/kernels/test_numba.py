"""The compiled kernels' runtime (``kernels._numba``): shared helpers, threads, BLAS limits."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import _numba


@pytest.mark.parametrize("shape", [(1, 1), (7, 1), (37, 37), (256, 64)])
def test_the_finiteness_scan_sees_every_entry(shape):
    rng = np.random.default_rng(6)
    A = rng.normal(size=shape) * 1e300  # huge but finite: no false alarm
    assert _numba.all_finite(A)
    for bad in (np.nan, np.inf, -np.inf):
        for i, j in [(0, 0), (shape[0] - 1, shape[1] - 1), (shape[0] // 2, shape[1] // 3)]:
            B = A.copy()
            B[i, j] = bad
            assert not _numba.all_finite(B)


@pytest.mark.parametrize("n", [1, 2, 33])
def test_the_symmetry_test_is_exact(n):
    rng = np.random.default_rng(7)
    A = rng.random((n, n))
    S = A + A.T
    assert _numba.is_symmetric(S)
    if n > 1:
        S[n - 1, 0] = np.nextafter(S[n - 1, 0], 2.0)  # one ulp off, in the last row
        assert not _numba.is_symmetric(S)


def test_tasks_run_alike_on_the_pool_and_in_the_caller():
    # given: tasks that write their index into a shared array
    def task(out, k):
        out[k] = k * k

    for threads in (1, 2):
        out = np.zeros(8)
        # when
        _numba.run_tasks(task, [(out, k) for k in range(8)], threads=threads)
        # then
        np.testing.assert_array_equal(out, np.arange(8) ** 2)


def test_overlapping_blas_limits_restore_the_original_setting():
    # given: the BLAS thread settings before, and two overlapping users (two threads'
    # solves) that leave in the order they did not enter
    def blas_threads():
        return [lib.num_threads for lib in _numba.blas_controller().select(user_api="blas").lib_controllers]

    before = blas_threads()
    first, second = _numba.one_blas_thread(), _numba.one_blas_thread()
    first.__enter__()
    second.__enter__()
    during = blas_threads()
    first.__exit__(None, None, None)
    still = blas_threads()
    second.__exit__(None, None, None)
    after = blas_threads()
    # then
    assert set(during) == {1} and set(still) == {1}
    assert after == before
