r"""The numba runtime of the compiled kernels: compile options, disk cache, threads.

Every compiled module (:mod:`kernels.fgw._exact_compiled`,
:mod:`kernels.fgw._entropic_compiled`, :mod:`kernels.fgw._linesearch`,
:mod:`kernels.fgw._ties`, :mod:`kernels.hierarchy`) takes from here, by these public
names, its decorators, its thread pool and the helpers they share. Importing this
module loads numba, so the modules that import it are themselves imported only by
the processes that run compiled code.

Compile options
    :data:`jit` compiles in nopython mode with ``cache=True`` (see below),
    ``nogil=True`` (a pair's whole solve runs without the GIL, so pairs run side by
    side on the threads of :func:`run_tasks`) and ``error_model="numpy"``: a division
    by zero gives ``inf`` or ``NaN`` as in numpy instead of raising
    ``ZeroDivisionError``, which would abort a whole batch; the solvers report such a
    pair instead. :data:`jit_reassoc` adds the fast-math flags ``reassoc`` and
    ``nsz``, so that LLVM vectorises reductions (a sum's order, and with it its last
    bits, is then the vectorised one: deterministic, not sequential).
On-disk cache
    Compiled code is written to ``__pycache__`` beside each module, or under
    ``NUMBA_CACHE_DIR`` when it is set, and loaded by later processes instead of
    compiling again; ``python -m kernels.warmup`` (:mod:`kernels.warmup`) fills it
    ahead of use. numba keys an entry by its own source file's path and modification
    time only: a cached function that calls a compiled function of another module
    is not recompiled when only that module changes. After editing this module,
    delete the cache (``find kernels -name '*.nb[ic]' -delete``).
Threads
    Nothing uses numba's ``parallel=True`` (so no threading layer is chosen or
    needed). :func:`run_tasks` spreads tasks over a long-lived
    :class:`~concurrent.futures.ThreadPoolExecutor` of :data:`THREADS` threads
    (default: one per CPU this process may use) and holds BLAS to one thread while
    it runs (:func:`one_blas_thread`), so that the products of the compiled code,
    which call scipy's BLAS, do not compete with the pool's own threads.

References
----------
Lam, Pitrou, Seibert. "Numba: a LLVM-based Python JIT compiler", LLVM-HPC 2015.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

jit = numba.njit(cache=True, nogil=True, error_model="numpy")
"""Compiled, cached on disk, GIL released, numpy's ``inf``/``NaN`` on division by zero."""

jit_reassoc = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "nsz"})
"""As :data:`jit`, with reassociated (vectorised) floating-point reductions."""

THREADS = 0
"""Threads of the pool of :func:`run_tasks` (0: one per CPU this process may use)."""

POOL_MAX_ENTRIES = 64 * 64
"""Largest pair (``n * m`` entries) whose tasks :func:`run_tasks` puts on the pool.
Larger pairs run one after the other in the calling thread, their matrix products on
BLAS's own threads: right after a threaded product OpenBLAS's idle threads spin for a
while and take a core from the pool."""

# --------------------------------------------------------------------------- shared compiled helpers


@jit_reassoc
def all_finite(A):
    """Whether a 2-d array holds no NaN and no infinity (one pass, no temporary).

    ``x * 0`` is NaN exactly for NaN and infinite ``x`` and NaN survives any order of
    the sum, so the reassociated (vectorised) sum is exact.
    """
    acc = 0.0
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            acc += A[i, j] * 0.0
    return acc == 0.0


@jit
def is_symmetric(C):
    """Whether a square 2-d array equals its transpose exactly (one pass over the lower
    triangle, no temporary)."""
    n = C.shape[0]
    for i in range(n):
        for j in range(i):
            if C[i, j] != C[j, i]:
                return False
    return True


# --------------------------------------------------------------------------- threads


def cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def pool(workers: int) -> ThreadPoolExecutor:
    """A long-lived pool of ``workers`` threads for this process (keyed by pid too:
    threads do not survive a fork)."""
    key = (os.getpid(), workers)
    with _POOLS_LOCK:
        executor = _POOLS.get(key)
        if executor is None:
            executor = _POOLS[key] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kernels")
        return executor


@functools.cache
def blas_controller() -> ThreadpoolController:
    """The process's BLAS thread pools, found once (the scan takes milliseconds).
    scipy's BLAS, which numba's matrix products call, is loaded first so that it is
    among them."""
    import scipy.linalg.cython_blas  # noqa: F401

    return ThreadpoolController()


_BLAS_LOCK = threading.Lock()
_blas_users = 0
_blas_limiter: Any = None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Hold BLAS to one thread (process-wide) while the block runs.

    Reference-counted: overlapping callers (threads of one process) restore the
    original setting only when the last one leaves.
    """
    global _blas_users, _blas_limiter
    with _BLAS_LOCK:
        if _blas_users == 0:
            _blas_limiter = blas_controller().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


def run_tasks(
    fn: Callable[..., None],
    tasks: Sequence[tuple[Any, ...]],
    *,
    threads: int | None = None,
    largest_pair: int = 0,
) -> None:
    """Run ``fn(*task)`` for every task, on the pool when that pays.

    Parameters
    ----------
    fn : callable
        A compiled (``nogil``) function that writes its results into arrays it is
        given; its return value is ignored.
    tasks : sequence of tuple
        Argument tuples, one per call.
    threads : int, optional
        Pool size; :data:`THREADS` (0: one per CPU) by default.
    largest_pair : int
        Entries ``n * m`` of the largest pair among the tasks: above
        :data:`POOL_MAX_ENTRIES` the tasks run in the calling thread.

    Notes
    -----
    On the pool, BLAS is held to one thread (:func:`one_blas_thread`): otherwise each
    product's BLAS threads compete with the other workers.
    """
    workers = threads if threads is not None else (THREADS or cpus())
    if workers <= 1 or len(tasks) <= 1 or largest_pair > POOL_MAX_ENTRIES:
        for task in tasks:
            fn(*task)
        return
    executor = pool(workers)
    with one_blas_thread():
        for done in [executor.submit(fn, *task) for task in tasks]:
            done.result()


def warm_up() -> None:
    """Compile the shared helpers for calls from Python, or load them from the cache."""
    A = np.eye(2)
    all_finite(A)
    is_symmetric(A)
