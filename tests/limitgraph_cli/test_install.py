"""`pip install .` from the repository gives a `limitgraph` command that needs no Django."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.limitgraph_cli.conftest import ROOT

FORBIDDEN_ON_IMPORT = ("django", "rest_framework", "celery", "apps", "config", "numpy")


def test_pip_installs_the_limitgraph_command(tmp_path: Path):
    # given a copy of what the repository's pyproject.toml packages
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copytree(
        ROOT / "limitgraph_cli", source / "limitgraph_cli", ignore=shutil.ignore_patterns("__pycache__")
    )
    target = tmp_path / "site"

    # when (offline: the build backend and the dependencies are this environment's)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            target,
            source,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )

    # then
    assert done.returncode == 0, done.stderr[-3000:]
    metadata = next(target.glob("limitgraph-*.dist-info"))
    requires = sorted(
        line for line in (metadata / "METADATA").read_text().splitlines() if line.startswith("Requires-Dist")
    )
    assert requires == ["Requires-Dist: httpx==0.28.1", "Requires-Dist: rich==15.0.0"]
    assert "limitgraph = limitgraph_cli.main:main" in (metadata / "entry_points.txt").read_text()
    env = {"PYTHONPATH": str(target), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    version = subprocess.run(
        [target / "bin" / "limitgraph", "--version"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert version.returncode == 0 and version.stdout.strip() == "limitgraph 0.1.0", version.stderr
    probe = (
        "import sys, limitgraph_cli.main as m; print(m.__file__); "
        f"print(sorted({{n.split('.')[0] for n in sys.modules}} & set({FORBIDDEN_ON_IMPORT!r})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    path, heavy = loaded.stdout.splitlines()
    assert path.startswith(str(target)) and heavy == "[]", loaded.stderr
