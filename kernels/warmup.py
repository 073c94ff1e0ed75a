"""Compile the numba kernels into their on-disk cache: ``python -m kernels.warmup``.

About 45 s on a fresh checkout (or after numba or the kernels change), under a second
when the cache is current. Run by the Docker images at build and, in a separate
process, by every CPU/GPU worker at start (``workers.bootstrap``).
"""

from __future__ import annotations

from kernels import assignment, entropic, hierarchy


def main() -> None:
    assignment.warm_up()
    entropic.warm_up()
    hierarchy.warm_up()


if __name__ == "__main__":
    main()
