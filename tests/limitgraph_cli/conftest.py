"""The client as people run it: `python -m limitgraph_cli` in a child process, against a live
server (pytest-django's live_server, a real threaded HTTP server on the test database) and,
for --follow, a real Celery worker."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from apps.accounts.services import api_key_create
from tests.workers.conftest import start_worker  # noqa: F401  (the --follow tests' worker)

ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 120


@dataclass
class Cli:
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "limitgraph_cli", *args]

    def environment(self, **overrides: str | None) -> dict[str, str]:
        env = {**self.env, **overrides}
        return {name: value for name, value in env.items() if value is not None}

    def __call__(
        self, *args: str, input: str | None = None, **env: str | None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*args),
            cwd=self.cwd,
            env=self.environment(**env),
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )

    def popen(self, *args: str, **env: str | None) -> subprocess.Popen:
        return subprocess.Popen(
            self.command(*args),
            cwd=self.cwd,
            env=self.environment(**env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def clean_env(tmp_path: Path) -> dict[str, str]:
    """This process's environment without any LIMITGRAPH_* setting, with a home of its own."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LIMITGRAPH_")}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "PYTHONPATH": str(ROOT)}


def key_for(user: Any) -> str:
    return api_key_create(user=user, name="cli tests")[1]


@pytest.fixture
def bare_cli(tmp_path: Path) -> Cli:
    """No server, no key: for login and for what works offline."""
    work = tmp_path / "work"
    work.mkdir()
    return Cli(work, clean_env(tmp_path))


@pytest.fixture
def cli(bare_cli: Cli, live_server: Any, user: Any) -> Cli:
    """Signed in as `user` through LIMITGRAPH_URL and LIMITGRAPH_API_KEY. pytest-django's live
    server is WSGI, which buffers event streams, so these follow runs by polling; the stream
    itself is followed in tests/limitgraph_cli/test_follow.py and by the dashboard's browser test."""
    bare_cli.env.update(
        LIMITGRAPH_URL=live_server.url, LIMITGRAPH_API_KEY=key_for(user), LIMITGRAPH_FOLLOW="poll"
    )
    return bare_cli
