"""Compile every numba kernel into its on-disk cache: ``python -m kernels.warmup``.

Later processes load the compiled code instead of compiling it on their first call
(:mod:`kernels._numba` says where the cache lives; ``docs/benchmarks.md`` gives the
times of a compile and of a load). Run by the Docker images at build and, in a
separate process, by every CPU/GPU worker at start (``workers.bootstrap``).
"""

from __future__ import annotations

from types import ModuleType

from kernels import _numba, hierarchy
from kernels.fgw import _entropic_compiled, _exact_compiled, _linesearch, _ties

COMPILED_MODULES: tuple[ModuleType, ...] = (
    _exact_compiled,
    _entropic_compiled,
    hierarchy,
    _linesearch,
    _ties,
    _numba,
)
"""Every module with compiled functions, each with a ``warm_up()`` that calls them all
from Python (which compiles, or loads from the cache, what they call in turn)."""


def main() -> None:
    for module in COMPILED_MODULES:
        module.warm_up()


if __name__ == "__main__":
    main()
