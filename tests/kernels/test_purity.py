"""kernels/ is pure compute: no Django, Celery or platform imports, no I/O."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

KERNELS = Path(__file__).resolve().parents[2] / "kernels"
FORBIDDEN_ROOTS = {"django", "rest_framework", "celery", "kombu", "apps", "workers", "config"}
IO_ROOTS = {"socket", "requests", "urllib", "http", "shutil", "sqlite3", "pickle"}
IO_CALLS = {"open", "print", "input"}


def kernel_files() -> list[Path]:
    files = sorted(KERNELS.rglob("*.py"))
    assert files, "kernels/ has no modules"
    return files


def imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", kernel_files(), ids=lambda p: str(p.relative_to(KERNELS)))
def test_no_platform_imports_or_io(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = imported_roots(tree)
    assert not roots & FORBIDDEN_ROOTS, f"{path.name} imports {roots & FORBIDDEN_ROOTS}"
    assert not roots & IO_ROOTS, f"{path.name} imports {roots & IO_ROOTS}"
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not calls & IO_CALLS, f"{path.name} calls {calls & IO_CALLS}"


def module_name(path: Path) -> str:
    parts = path.relative_to(KERNELS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_loaded_by_importing(modules: list[str], roots: set[str]) -> list[str]:
    """Modules under ``roots`` that a fresh interpreter has loaded after importing ``modules``."""
    code = (
        "import sys\n"
        f"for name in {modules!r}:\n"
        "    __import__(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(roots)!r})\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=KERNELS.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [name for name in done.stdout.strip().split(",") if name]


def test_importing_kernels_loads_no_platform_module() -> None:
    modules = [module_name(p) for p in kernel_files()]
    assert "kernels.fgw._api" in modules  # the package's modules are covered too
    loaded = modules_loaded_by_importing(modules, FORBIDDEN_ROOTS)
    assert loaded == [], f"importing kernels loaded {loaded}"


def test_importing_the_fgw_api_loads_no_numba() -> None:
    # kernels.rd (imported for its knee by processes that never solve) imports
    # kernels.fgw; numba loads only with the solvers, when a call needs them
    loaded = modules_loaded_by_importing(["kernels.fgw", "kernels.rd", "kernels.graphs"], {"numba"})
    assert loaded == [], f"importing kernels.fgw loaded {loaded[:5]}"
