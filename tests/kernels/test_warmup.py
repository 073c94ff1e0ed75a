"""``python -m kernels.warmup`` compiles every numba kernel into the disk cache, and a later
process loads them from it instead of compiling."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numba

ROOT = Path(__file__).resolve().parents[2]

LOAD_STATS = """
import json
import numba
from kernels import warmup

warmup.main()
stats = {}
for module in warmup.COMPILED_MODULES:
    for name, obj in vars(module).items():
        if isinstance(obj, numba.core.dispatcher.Dispatcher) and obj.__module__ == module.__name__:
            s = obj.stats
            stats[f"{module.__name__}.{name}"] = [sum(s.cache_hits.values()), sum(s.cache_misses.values())]
print(json.dumps(stats))
"""


def test_a_second_process_loads_every_kernel_from_the_cache():
    # given: the cache filled by the command (a no-op when it is already current)
    subprocess.run([sys.executable, "-m", "kernels.warmup"], cwd=ROOT, check=True, timeout=600)
    # when: another process warms up again
    done = subprocess.run(
        [sys.executable, "-c", LOAD_STATS], cwd=ROOT, check=True, capture_output=True, text=True, timeout=300
    )
    stats = json.loads(done.stdout)
    # then: nothing was compiled, and the entry points of every compiled module were loaded
    assert {name: misses for name, (_, misses) in stats.items() if misses} == {}
    loaded = {name for name, (hits, _) in stats.items() if hits}
    for name in (
        "kernels.fgw._exact_compiled._cg_range",
        "kernels.fgw._exact_compiled._assign",
        "kernels.fgw._entropic_compiled._pgd_range",
        "kernels.fgw._linesearch.solve_1d_linesearch_quad",
        "kernels.fgw._linesearch.solve_1d_linesearch_quad_batch",
        "kernels.fgw._ties._float32_repeats",
        "kernels.hierarchy.ward_merges",
        "kernels.hierarchy.cut_labels",
        "kernels.hierarchy.cluster_sums",
        "kernels._numba.all_finite",
        "kernels._numba.is_symmetric",
    ):
        assert name in loaded, sorted(loaded)


def test_every_module_with_compiled_code_is_warmed_up():
    # a module that defines numba functions but is missing from the list would compile
    # in the first run that needs it
    from kernels import warmup

    listed = {module.__name__ for module in warmup.COMPILED_MODULES}
    for path in sorted((ROOT / "kernels").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        module = importlib.import_module(name)
        compiled = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, numba.core.dispatcher.Dispatcher) and obj.__module__ == name
        ]
        assert not compiled or name in listed, name
