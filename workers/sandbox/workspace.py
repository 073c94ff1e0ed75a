"""A session's workspace on the worker's side: its size, its owner, files in and out.

The sandboxed code may leave anything in its workspace: symlinks to host paths, FIFOs,
deep trees. Everything here runs with the worker's privileges, so nothing follows a
link: trees are walked without following, files are opened relative to a directory
descriptor with O_NOFOLLOW, and only regular files are read or replaced.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# Files a run asks to keep go here (relative to the workspace); kept files leave it.
OUTBOX = "outbox"
COPY_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Usage:
    bytes: int
    files: int

    def over(self, *, max_bytes: int, max_files: int) -> bool:
        return self.bytes > max_bytes or self.files > max_files

    def plus(self, other: Usage) -> Usage:
        return Usage(bytes=self.bytes + other.bytes, files=self.files + other.files)


def usage(path: Path, *, stop_above_files: int | None = None) -> Usage:
    """Bytes of the regular files under `path` and the number of entries of every type.

    Stops counting once past `stop_above_files` entries (enough to know a quota is broken).
    """
    total = entries = 0
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in filenames + dirnames:
            entries += 1
            try:
                info = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
        if stop_above_files is not None and entries > stop_above_files:
            break
    return Usage(bytes=total, files=entries)


def hand_over(path: Path, uid: int, gid: int, *, skip_hard_links: bool = False) -> None:
    """Give the tree at `path` to uid:gid (links themselves, never their targets), its top
    closed to others again; nothing if it is gone (its session was deleted meanwhile).

    `skip_hard_links`: leave files with more than one name alone. Without namespaces a
    program can hard-link into its workspace a host file it may write; chowning that would
    give a host file away.
    """
    try:
        os.lchown(path, uid, gid)
        os.chmod(path, 0o700)
    except FileNotFoundError:
        return
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in dirnames + filenames:
            entry = os.path.join(dirpath, name)
            try:
                if skip_hard_links:
                    info = os.lstat(entry)
                    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                        continue
                os.lchown(entry, uid, gid)
            except FileNotFoundError:
                pass


@contextmanager
def _directory(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def copy_in(workspace: Path, name: str, source: BinaryIO) -> int:
    """Write `source` to `workspace/name` (a plain file name); return the bytes written.

    An entry already there is replaced if it is a file or a link; a directory is refused.
    """
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"not a plain file name: {name!r}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with _directory(workspace) as dir_fd:
        try:
            existing = os.lstat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode):
                raise IsADirectoryError(f"the workspace has a directory named {name!r}")
            os.unlink(name, dir_fd=dir_fd)
        fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
        written = 0
        with os.fdopen(fd, "wb") as target:
            while chunk := source.read(COPY_CHUNK_BYTES):
                target.write(chunk)
                written += len(chunk)
    return written


def outbox_files(workspace: Path) -> list[str]:
    """Names of the regular files directly in the workspace's outbox, sorted."""
    try:
        with _directory(workspace) as dir_fd, _outbox(dir_fd) as box_fd:
            names = []
            for entry in os.scandir(box_fd):
                if entry.is_file(follow_symlinks=False):
                    names.append(entry.name)
            return sorted(names)
    except (FileNotFoundError, NotADirectoryError, OSError):
        return []


@contextmanager
def _outbox(dir_fd: int) -> Iterator[int]:
    fd = os.open(OUTBOX, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


@contextmanager
def open_kept(workspace: Path, name: str) -> Iterator[BinaryIO | None]:
    """The outbox file `name` opened for reading (None if it is not a regular file any more);
    removed from the outbox when the block ends without error."""
    with _directory(workspace) as dir_fd, _outbox(dir_fd) as box_fd:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=box_fd)
        except OSError:
            yield None
            return
        with os.fdopen(fd, "rb") as kept:
            if not stat.S_ISREG(os.fstat(kept.fileno()).st_mode):
                yield None
                return
            yield kept  # type: ignore[misc]
        os.unlink(name, dir_fd=box_fd)


def remove(path: Path) -> None:
    """Delete a workspace and everything in it (links removed, never followed)."""
    shutil.rmtree(path, ignore_errors=True)
