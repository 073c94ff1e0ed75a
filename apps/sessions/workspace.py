"""A session's workspace seen from the web: list its files, read one, delete one.

The workspace is the directory the session's sandboxed runs write to
(RUN_WORKSPACE_ROOT/<session id>, kept between its runs); the web process reads it
directly, so web and sandbox workers share RUN_WORKSPACE_ROOT (one host, or a shared
volume). What is in it was written by untrusted code: names are relative paths checked
component by component, every component is opened relative to its parent's descriptor
without following links, and a link anywhere on the way is refused, whether it points
inside or outside. Only regular files are listed and read.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from uuid import UUID

from django.conf import settings

from apps.core.exceptions import NotFound, ValidationFailed

MAX_NAME_CHARS = 4096
# Listing stops here: a workspace is bounded by SANDBOX_WORKSPACE_MAX_FILES anyway.
MAX_LISTED_FILES = 10_000


def workspace_dir(session_id: UUID | str) -> Path:
    return Path(settings.RUN_WORKSPACE_ROOT) / str(session_id)


def session_lock_path(session_id: UUID | str) -> Path:
    """The flock that serialises a session's sandboxed runs (workers/sandbox/locks)."""
    return Path(settings.RUN_WORKSPACE_ROOT) / ".sandbox" / "sessions" / f"{session_id}.lock"


@dataclass(frozen=True)
class WorkspaceFile:
    name: str
    size: int
    modified_at: datetime


@dataclass(frozen=True)
class WorkspaceListing:
    files: list[WorkspaceFile]
    total_bytes: int
    truncated: bool


def _components(name: str) -> list[str]:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS or "\x00" in name:
        raise ValidationFailed("Not a workspace file name.", fields={"name": ["Not a file name."]})
    if name.startswith("/"):
        raise ValidationFailed(
            "A workspace file name is relative to the workspace.",
            fields={"name": ["Absolute paths are refused."]},
        )
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValidationFailed(
            "A workspace file name has no '.', '..' or empty components.",
            fields={"name": ["'.', '..' and empty components are refused."]},
        )
    return parts


def _refuse_link(name: str) -> ValidationFailed:
    return ValidationFailed(
        f"{name!r} is or passes through a symbolic link; links in a workspace are not followed.",
        fields={"name": ["Symbolic links are not followed."]},
    )


@contextmanager
def _parent(session_id: UUID | str, name: str) -> Iterator[tuple[int, str]]:
    """(descriptor of the directory holding `name`, its last component); no link followed."""
    parts = _components(name)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(workspace_dir(session_id), flags)
    except FileNotFoundError:
        raise NotFound("No such file in the session's workspace.") from None
    try:
        for part in parts[:-1]:
            try:
                child = os.open(part, flags, dir_fd=fd)
            except FileNotFoundError:
                raise NotFound("No such file in the session's workspace.") from None
            except OSError:
                # ELOOP (a link) or ENOTDIR (a file, or a link to anything)
                info = os.lstat(part, dir_fd=fd)
                if stat.S_ISLNK(info.st_mode):
                    raise _refuse_link(name) from None
                raise NotFound("No such file in the session's workspace.") from None
            os.close(fd)
            fd = child
        yield fd, parts[-1]
    finally:
        os.close(fd)


def workspace_list(*, session_id: UUID | str) -> WorkspaceListing:
    """The regular files under the workspace (links are not followed nor listed), by name."""
    root = workspace_dir(session_id)
    files: list[WorkspaceFile] = []
    total = 0
    truncated = False
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for filename in sorted(filenames):
            path = os.path.join(dirpath, filename)
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            if len(files) >= MAX_LISTED_FILES:
                truncated = True
                continue
            total += info.st_size
            files.append(
                WorkspaceFile(
                    name=_display(os.path.relpath(path, root)),
                    size=info.st_size,
                    modified_at=datetime.fromtimestamp(info.st_mtime, tz=UTC),
                )
            )
    files.sort(key=lambda f: f.name)
    return WorkspaceListing(files=files, total_bytes=total, truncated=truncated)


def workspace_open_file(*, session_id: UUID | str, name: str) -> tuple[BinaryIO, int]:
    """The file `name` opened for reading, and its size; the caller closes it."""
    with _parent(session_id, name) as (dir_fd, last):
        try:
            fd = os.open(last, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            raise NotFound("No such file in the session's workspace.") from None
        except OSError:
            if stat.S_ISLNK(os.lstat(last, dir_fd=dir_fd).st_mode):
                raise _refuse_link(name) from None
            raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ValidationFailed(f"{name!r} is not a regular file.", fields={"name": ["Not a regular file."]})
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb"), info.st_size


def workspace_delete_file(*, session_id: UUID | str, name: str) -> None:
    """Delete a file, a link (the link itself) or a directory tree from the workspace."""
    with _parent(session_id, name) as (dir_fd, last):
        try:
            info = os.lstat(last, dir_fd=dir_fd)
        except FileNotFoundError:
            raise NotFound("No such file in the session's workspace.") from None
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(last, dir_fd=dir_fd)
        else:
            os.unlink(last, dir_fd=dir_fd)


def _display(name: str) -> str:
    # A name that is not UTF-8 (the code may make one) shows its bytes escaped: JSON has no
    # other way to carry it. Such a file is removed with its directory or the whole workspace.
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def workspace_clear(*, session_id: UUID | str) -> None:
    """Delete everything in a session's workspace; the workspace itself stays."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(workspace_dir(session_id), flags)
    except FileNotFoundError:
        return
    try:
        for entry in os.scandir(fd):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.name, dir_fd=fd)
            else:
                os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)


def workspace_delete(*, session_id: UUID | str) -> None:
    """Remove a session's workspace and its lock file (a session that is gone)."""
    shutil.rmtree(workspace_dir(session_id), ignore_errors=True)
    try:
        session_lock_path(session_id).unlink()
    except FileNotFoundError:
        pass
