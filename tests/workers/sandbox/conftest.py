"""The sandbox runner called directly (no Celery, no database): bubblewrap is required."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.sandbox import Limits, Sandbox

# The system's Python: readable by the sandbox uids (a pyenv under /root is not).
SYSTEM_PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else str(shutil.which("python3"))


@pytest.fixture(scope="session")
def bwrap() -> str:
    found = shutil.which("bwrap")
    assert found, "bubblewrap is needed for the sandbox tests: apt-get install bubblewrap (.ci/run does)"
    return found


@pytest.fixture(scope="module")
def workspace_root() -> Iterator[Path]:
    """A workspace root every sandbox uid can enter (pytest's tmp_path is closed to them)."""
    root = Path(tempfile.mkdtemp(prefix="lg-sandbox-", dir="/tmp"))
    os.chmod(root, 0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def sandbox(bwrap: str, workspace_root: Path) -> Sandbox:
    return Sandbox(
        mode="bwrap",
        bwrap=bwrap,
        interpreters={"python3": SYSTEM_PYTHON},
        state_dir=workspace_root / ".sandbox",
        uid_base=210_000,
        uid_slots=8,
    )


@pytest.fixture
def make_workspace(workspace_root: Path):  # type: ignore[no-untyped-def]
    created: list[Path] = []

    def make() -> Path:
        path = Path(tempfile.mkdtemp(dir=workspace_root))
        created.append(path)
        return path

    yield make
    for path in created:
        shutil.rmtree(path, ignore_errors=True)


SMALL = Limits(
    timeout_seconds=10.0,
    cpu_seconds=10,
    memory_bytes=256 * 1024 * 1024,
    processes=16,
    output_bytes=64 * 1024,
    file_bytes=1024 * 1024,
    open_files=64,
    tmp_bytes=4 * 1024 * 1024,
    workspace_bytes=8 * 1024 * 1024,
    workspace_files=200,
)
