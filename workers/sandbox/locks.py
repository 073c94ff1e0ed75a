"""Locks a dead worker cannot leave held: flock(2) on files beside the workspaces.

The kernel drops a flock when the last descriptor of its open file goes, so a worker
killed by any signal, or a host that reboots, releases every lock it held; nothing
expires on a timer and nothing needs cleaning up. They work with every database
(SQLite included) and every broker, and live beside what they protect: a session's
lock serialises its runs on its workspace, a uid slot gives a run a uid that no other
running sandbox has. Many hosts sharing RUN_WORKSPACE_ROOT over NFSv4 get the same
semantics from its lock manager (a dead host's locks go when its lease lapses).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# How often a waiter tries again, hence how late it notices the lock is free.
LOCK_POLL_SECONDS = 0.05


def _open_lock_file(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)


def try_flock(path: Path) -> int | None:
    """An open descriptor holding an exclusive flock on `path`, or None if it is held elsewhere."""
    fd = _open_lock_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


@contextmanager
def held(path: Path, *, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive flock on `path` for the block, waiting as long as it takes.

    `waiting` is called between attempts (a run's cancel check: it may raise).
    """
    while (fd := try_flock(path)) is None:
        if waiting is not None:
            waiting()
        time.sleep(LOCK_POLL_SECONDS)
    try:
        yield
    finally:
        os.close(fd)


def is_held(path: Path) -> bool:
    """Whether some process holds `path`'s lock now (for tests and diagnostics)."""
    fd = try_flock(path)
    if fd is None:
        return True
    os.close(fd)
    return False


@contextmanager
def one_of(paths: list[Path], *, waiting: Callable[[], None] | None = None) -> Iterator[int]:
    """Hold the first free lock among `paths`; yield its index."""
    while True:
        for index, path in enumerate(paths):
            fd = try_flock(path)
            if fd is not None:
                try:
                    yield index
                finally:
                    os.close(fd)
                return
        if waiting is not None:
            waiting()
        time.sleep(LOCK_POLL_SECONDS)
