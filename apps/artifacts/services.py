"""Writes for artifacts: store bytes by key, never inline in a JSON column.

HTTP-free: the API, the admin and the run executors on the workers call the same functions
and get the same limits. Bytes stream through `_MeteredReader`, which hashes and counts
them on their way to the storage, so a file object is never copied whole into memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import unicodedata
import uuid
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import transaction

from apps.artifacts.exceptions import ArtifactInvalid, ArtifactTooLarge
from apps.artifacts.models import CONTENT_TYPE_MAX_LENGTH, NAME_MAX_LENGTH, Artifact

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from apps.runs.models import Run
    from apps.sessions.models import Session

logger = logging.getLogger(__name__)

STORAGE_ALIAS = "artifacts"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# The file name part of a storage key: long enough to recognise, short enough for any backend.
SAFE_FILENAME_MAX_LENGTH = 100
_UNSAFE_FILENAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")
# RFC 9110 media type: token "/" token *( ";" token "=" ( token / quoted-string ) ).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_CONTENT_TYPE = re.compile(rf'^{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=({_TOKEN}|"[^"\\\x00-\x1f\x7f]*"))*$')


def artifact_storage() -> Storage:
    """The storage named "artifacts" in settings.STORAGES (a directory under var/, or S3)."""
    return storages[STORAGE_ALIAS]


def safe_filename(name: str) -> str:
    """The last path component of `name`, reduced to `A-Za-z0-9._-`, never empty nor dotted.

    Used for the storage key and the download's Content-Disposition: whatever a client
    called its artifact, neither can climb out of its directory or carry a header.
    """
    base = re.split(r"[/\\]", name)[-1]
    ascii_only = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    cleaned = _UNSAFE_FILENAME_CHARACTERS.sub("_", ascii_only).strip("._-")
    if len(cleaned) > SAFE_FILENAME_MAX_LENGTH:
        suffix = PurePosixPath(cleaned).suffix[:16]
        cleaned = cleaned[: SAFE_FILENAME_MAX_LENGTH - len(suffix)] + suffix
    return cleaned or "artifact"


def storage_key_for(*, session_id: uuid.UUID, artifact_id: uuid.UUID, name: str) -> str:
    # Both directories are ids the platform made, so a key is unique without asking the storage.
    return f"{session_id}/{artifact_id}/{safe_filename(name)}"


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ArtifactInvalid("A name is required.", field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise ArtifactInvalid(f"At most {NAME_MAX_LENGTH} characters.", field="name")
    # Control and format characters (newlines, right-to-left overrides) would spoof listings.
    if any(unicodedata.category(character).startswith("C") for character in name):
        raise ArtifactInvalid("Control and format characters are not allowed.", field="name")
    return name


def _check_content_type(content_type: str) -> str:
    content_type = (content_type or DEFAULT_CONTENT_TYPE).strip()
    if len(content_type) > CONTENT_TYPE_MAX_LENGTH or not _CONTENT_TYPE.match(content_type):
        raise ArtifactInvalid("Not a media type (type/subtype).", field="content_type")
    return content_type


class _MeteredReader(io.RawIOBase):
    """Reads `source` for the storage, hashing and counting; raises past `limit` bytes.

    Never asks the source for more than one byte beyond the limit, so an oversized stream
    is cut off there rather than read to its end.
    """

    def __init__(self, source: BinaryIO, limit: int) -> None:
        super().__init__()
        self._source = source
        self._limit = limit
        self._digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        room = self._limit + 1 - self.size
        chunk = self._source.read(room if size is None or size < 0 else min(size, room))
        if not isinstance(chunk, bytes | bytearray):
            raise ArtifactInvalid("Artifact data must be bytes or a binary file.", field="data")
        self.size += len(chunk)
        if self.size > self._limit:
            raise ArtifactTooLarge(self._limit)
        self._digest.update(chunk)
        return bytes(chunk)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        # The caller opened the source and closes it; storages close what they are given.
        pass

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


class _Upload(File):
    # django-storages' S3 backend takes the object's Content-Type from this attribute.
    def __init__(self, reader: _MeteredReader, name: str, content_type: str) -> None:
        super().__init__(reader, name)
        self.content_type = content_type


def artifact_storage_discard(*, storage_key: str) -> None:
    """Remove stored bytes (and, on a filesystem, the artifact's emptied directory).

    Used after a failed store and when an Artifact row goes; a failure is logged, not
    raised, because the row is already gone or never existed.
    """
    storage = artifact_storage()
    try:
        storage.delete(storage_key)
    except Exception:
        logger.exception("could not delete artifact bytes %s", storage_key)
        return
    try:
        directory = os.path.dirname(storage.path(storage_key))
    except NotImplementedError:
        return  # object stores have no directories
    with contextlib.suppress(OSError):  # not empty, or already gone
        os.rmdir(directory)


def artifact_put(
    *,
    owner: AbstractBaseUser,
    session: Session,
    name: str,
    data: bytes | BinaryIO,
    content_type: str = DEFAULT_CONTENT_TYPE,
    run: Run | None = None,
) -> Artifact:
    """Store `data` as an artifact of `session` and return its row.

    `data` is bytes or a binary file object read in chunks (never whole into memory);
    its size and SHA-256 are computed on the way. Raises ArtifactTooLarge past
    settings.ARTIFACT_MAX_BYTES and ArtifactInvalid for a bad name, content type, a session
    of another user or a run of another session; in both cases nothing stays stored.
    """
    name = _check_name(name)
    content_type = _check_content_type(content_type)
    if session.owner_id != owner.pk:
        raise ArtifactInvalid("The session belongs to another user.", field="session")
    if run is not None and run.session_id != session.pk:
        raise ArtifactInvalid("The run belongs to another session.", field="run")

    limit = settings.ARTIFACT_MAX_BYTES
    if isinstance(data, bytes | bytearray | memoryview):
        if len(data) > limit:
            raise ArtifactTooLarge(limit)
        data = io.BytesIO(data)

    artifact_id = uuid.uuid4()
    reader = _MeteredReader(data, limit)
    key = storage_key_for(session_id=session.pk, artifact_id=artifact_id, name=name)
    storage = artifact_storage()
    try:
        key = storage.save(key, _Upload(reader, key, content_type))
    except BaseException:
        artifact_storage_discard(storage_key=key)
        raise
    try:
        return Artifact.objects.create(
            id=artifact_id,
            owner=owner,
            session=session,
            run=run,
            name=name,
            content_type=content_type,
            size=reader.size,
            sha256=reader.sha256,
            storage_key=key,
        )
    except BaseException:
        artifact_storage_discard(storage_key=key)
        raise


def artifact_open(*, artifact: Artifact) -> BinaryIO:
    """The artifact's bytes as a binary file; the caller closes it.

    Raises FileNotFoundError when the storage has lost them.
    """
    return artifact_storage().open(artifact.storage_key, "rb")


def artifact_delete(*, artifact: Artifact) -> None:
    """Delete the row; its bytes go once the transaction commits (apps.artifacts.receivers)."""
    artifact.delete()


def schedule_storage_discard(*, storage_key: str) -> None:
    # After commit: a rolled-back delete must still find its bytes.
    transaction.on_commit(lambda: artifact_storage_discard(storage_key=storage_key))
