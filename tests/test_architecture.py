"""The layers, kept by tests: import-linter's contracts (pyproject.toml) and what the web
process really loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY_MODULES = (
    "numpy",
    "scipy",
    "numba",
    "kernels",
    "torch",
    "transformers",
    "ot",
    "matplotlib",
    "workers.executors",
)


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout and "6 kept" in done.stdout


def test_a_broken_contract_fails_the_linter(tmp_path):
    # The contracts must bite: a domain app importing workers is reported.
    bad = ROOT / "apps" / "core" / "_architecture_probe.py"
    bad.write_text("import workers.runs  # noqa\n")
    try:
        lint_imports = Path(sys.executable).parent / "lint-imports"
        done = subprocess.run(
            [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
    finally:
        bad.unlink()
    assert done.returncode != 0 and "apps.core._architecture_probe -> workers.runs" in done.stdout


PROBE = """
import json, sys
import django
from django.urls import get_resolver, URLPattern, URLResolver
import config.wsgi  # noqa: F401  (sets Django up)
from drf_spectacular.generators import SchemaGenerator

def walk(patterns):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from walk(p.url_patterns)
        else:
            yield p

views = [p.callback for p in walk(get_resolver().url_patterns)]
SchemaGenerator().get_schema(request=None, public=True)  # introspects every serializer
roots = {heavy_roots}
heavy = sorted(m for m in sys.modules if m.split(".")[0] in roots or m.startswith("workers.executors"))
print(json.dumps({{"views": len(views), "heavy": heavy}}))
"""


def test_the_web_process_loads_no_array_ml_or_kernel_code():
    roots = sorted({name.split(".")[0] for name in HEAVY_MODULES if "." not in name})
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy_roots=roots)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["views"] > 20
    assert report["heavy"] == []
