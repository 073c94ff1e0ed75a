"""Which exact pairs meet ties in their linear subproblems: the tie test.

When a row or a column of the feature cost ``M`` holds a value twice, two candidate
matches of a node cost the same on features, and the linear subproblems of
conditional gradient can meet exact ties, whose resolution decides the local minimum
CG reaches. Categorical labels make that the rule (most entries repeat a value of
their row); continuous features make it a rare accident (two nodes at exactly the
same distance from a coarse node's mean), where the structure term still separates
the candidates. Pairs that :func:`repeats_values` flags, and every pair when
``alpha == 1`` (no feature term), are solved by
:func:`kernels.fgw._exact.cg_pot_order` under ``solver="auto"`` and
``solver="reference"``, so that they land where POT lands.
"""

from __future__ import annotations

import threading

import numpy as np

from kernels._numba import jit

TIE_FRACTION = 0.01
"""Share of a feature cost's entries that must repeat a value of their row or column
for the pair to count as tie-prone: categorical labels repeat in most entries,
continuous features at most in a handful."""

KEPT_TABLE_MAX_SLOTS = 1 << 20
"""Largest hash table (4 MiB) that :func:`float32_repeats` keeps for its thread's next
call; larger costs get a table of their own."""


def repeats_values(Ms: list[np.ndarray]) -> list[bool]:
    """Per feature cost: whether its rows and columns repeat values often enough to make
    the linear subproblems tie-prone.

    Parameters
    ----------
    Ms : list of ndarray, shapes (n_k, m_k), float64

    Returns
    -------
    list of bool
        True where at least :data:`TIE_FRACTION` of the entries repeat a neighbour in
        their sorted row or column, or where the cost is too small for a fraction to
        mean anything and any entry does.

    Notes
    -----
    A value repeated within a row or column repeats within the matrix, and each
    matrix-wide repeat makes at most two row or column repeats, so
    :func:`float32_repeats` (hashing, compiled) clears most costs before the exact
    count by sorting. It counts repeats after rounding to float32: rounding maps equal
    values to equal values, so it finds at least as many repeats and clears no cost
    that the exact count would flag. Costs of equal shape are screened together.
    """
    out = [False] * len(Ms)
    groups: dict[tuple[int, ...], list[int]] = {}
    for k, M in enumerate(Ms):
        if M.ndim == 2 and M.size:
            groups.setdefault(M.shape, []).append(k)
    for shape, members in groups.items():
        B = len(members)
        need = max(1.0, TIE_FRACTION * shape[0] * shape[1])
        rounded = np.empty((B, *shape), dtype=np.float32)  # (stacked straight into float32)
        with np.errstate(over="ignore"):  # beyond float32: inf, counted like any other
            np.stack([Ms[k] for k in members], out=rounded, casting="same_kind")
        suspect = 2 * float32_repeats(rounded) >= need
        if not suspect.any():
            continue
        members = [k for k, hit in zip(members, suspect, strict=True) if hit]
        stack = np.stack([Ms[k] for k in members])
        rows = np.sort(stack, axis=2)
        cols = np.sort(stack, axis=1)
        repeats = np.count_nonzero(rows[:, :, 1:] == rows[:, :, :-1], axis=(1, 2)) + (
            np.count_nonzero(cols[:, 1:, :] == cols[:, :-1, :], axis=(1, 2))
        )
        hit = repeats >= need
        for k, h in zip(members, hit, strict=True):
            out[k] = bool(h)
    return out


@jit
def _float32_repeats(A, table):
    B, n, m = A.shape
    N = n * m
    mask = table.shape[0] - 1  # a power of two
    bits = 0
    while (1 << bits) <= mask:
        bits += 1
    out = np.zeros(B, dtype=np.int64)
    for b in range(B):
        values = A[b].ravel()
        keys = values.view(np.uint32)
        table[:] = 0
        zeros = 0
        repeats = 0
        for k in range(N):
            if values[k] != values[k]:
                continue  # NaN
            key = keys[k]
            if key == 0 or key == 0x80000000:  # +0.0 and -0.0 (0 marks an empty slot)
                zeros += 1
                continue
            h = ((np.int64(key) * 2654435769) & 0xFFFFFFFF) >> (32 - bits)  # Fibonacci hashing
            while True:
                if table[h] == 0:
                    table[h] = key
                    break
                if table[h] == key:
                    repeats += 1
                    break
                h = (h + 1) & mask
        out[b] = repeats + max(zeros - 1, 0)
    return out


_TABLES = threading.local()


def float32_repeats(A: np.ndarray) -> np.ndarray:
    """Per matrix of a float32 stack: how many entries equal an earlier entry of the same
    matrix (NaN equals nothing, ``-0.0`` equals ``0.0``).

    Parameters
    ----------
    A : ndarray, shape (B, n, m), float32

    Returns
    -------
    ndarray, shape (B,), int64
        What counting equal neighbours in each matrix's sorted values would give.

    Notes
    -----
    Open addressing on the bit patterns (Fibonacci hashing, Knuth 1998, 6.4), in a
    table of at least ``4 n m`` slots kept per thread up to
    :data:`KEPT_TABLE_MAX_SLOTS` (a fresh one per call costs page faults).
    """
    A = np.ascontiguousarray(A, dtype=np.float32)
    B, n, m = A.shape
    slots = 1 << max(4, (4 * n * m - 1).bit_length())
    if slots > 2**31:
        raise ValueError(f"too many entries to screen: {n} x {m}")
    table = getattr(_TABLES, "table", None)
    if table is None or table.size < slots:
        table = np.empty(slots, dtype=np.uint32)
        if slots <= KEPT_TABLE_MAX_SLOTS:
            _TABLES.table = table
    return _float32_repeats(A, table[:slots])


def warm_up() -> None:
    """Compile the screen, or load it from the cache."""
    float32_repeats(np.zeros((1, 2, 2), dtype=np.float32))
