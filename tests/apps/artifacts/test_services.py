"""The artifact services from Python, as a run executor on a worker calls them."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc

import pytest
from django.core.files.storage import storages

from apps.artifacts.exceptions import ArtifactInvalid, ArtifactTooLarge
from apps.artifacts.models import Artifact
from apps.artifacts.selectors import artifact_get_for_user, artifact_list_for_user
from apps.artifacts.services import artifact_delete, artifact_open, artifact_put, safe_filename
from apps.runs.services import run_submit
from apps.sessions.services import session_create
from tests.apps.artifacts.conftest import stored_files

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


class PatternStream(io.RawIOBase):
    """`size` bytes made on demand, never held whole: a file far larger than what is read at once."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.block = os.urandom(64 * 1024)
        self.digest = hashlib.sha256()
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.largest_read = max(self.largest_read, size)
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        chunk = (self.block * (size // len(self.block) + 1))[:size]
        self.remaining -= len(chunk)
        self.digest.update(chunk)
        return chunk


def test_put_bytes_records_size_and_sha256_and_reads_back(user, session, artifact_root):
    data = b"limitgraph artifact\n" * 1000

    artifact = artifact_put(
        owner=user, session=session, name="notes.txt", data=data, content_type="text/plain"
    )

    artifact.refresh_from_db()
    assert artifact.size == len(data) and artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert artifact.content_type == "text/plain" and artifact.owner == user and artifact.run is None
    assert artifact.storage_key == f"{session.pk}/{artifact.pk}/notes.txt"
    assert (artifact_root / artifact.storage_key).read_bytes() == data
    with artifact_open(artifact=artifact) as stored:
        assert stored.read() == data
    assert artifact.as_reference() == {
        "artifact": str(artifact.pk),
        "name": "notes.txt",
        "content_type": "text/plain",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def test_put_file_object_streams_without_holding_it_in_memory(user, session):
    # given a 48 MiB file that exists only as it is read
    source = PatternStream(48 * MiB)

    # when it is stored, with every allocation traced
    tracemalloc.start()
    try:
        artifact = artifact_put(owner=user, session=session, name="big.bin", data=source)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    # then it went through in chunks: size and hash are right, memory stayed far below the size
    assert artifact.size == 48 * MiB and artifact.sha256 == source.digest.hexdigest()
    assert source.largest_read <= 1 * MiB
    assert peak < 8 * MiB, f"peak {peak} bytes"
    with artifact_open(artifact=artifact) as stored:
        digest = hashlib.sha256()
        for chunk in iter(lambda: stored.read(MiB), b""):
            digest.update(chunk)
    assert digest.hexdigest() == artifact.sha256


def test_put_with_a_run_of_the_session(user, session):
    run, _ = run_submit(user=user, session_id=session.pk, kind="echo", payload={})

    artifact = artifact_put(owner=user, session=session, name="plan.npy", data=b"\x93NUMPY", run=run)

    assert list(run.artifacts.all()) == [artifact]
    assert list(artifact_list_for_user(user=user, run_id=run.pk)) == [artifact]


@pytest.mark.parametrize("as_file", [False, True], ids=["bytes", "file"])
def test_over_the_limit_raises_and_stores_nothing(user, session, settings, artifact_root, as_file):
    settings.ARTIFACT_MAX_BYTES = 1000
    data = b"x" * 1001

    with pytest.raises(ArtifactTooLarge) as raised:
        artifact_put(owner=user, session=session, name="big", data=io.BytesIO(data) if as_file else data)

    assert raised.value.limit == 1000 and isinstance(raised.value, ValueError)
    assert Artifact.objects.count() == 0
    assert stored_files(artifact_root) == []


def test_an_oversized_stream_is_cut_off_at_the_limit(user, session, settings, artifact_root):
    settings.ARTIFACT_MAX_BYTES = 4 * MiB
    source = PatternStream(64 * MiB)

    with pytest.raises(ArtifactTooLarge):
        artifact_put(owner=user, session=session, name="endless", data=source)

    # read up to one chunk past the limit, not to the end of the stream
    assert source.remaining >= 64 * MiB - 4 * MiB - MiB
    assert stored_files(artifact_root) == []


def test_exactly_the_limit_is_accepted(user, session, settings):
    settings.ARTIFACT_MAX_BYTES = 1000
    assert artifact_put(owner=user, session=session, name="edge", data=io.BytesIO(b"y" * 1000)).size == 1000


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "..\\..\\windows\\win.ini",
        "..",
        "a/../../../../b",
        "ünï cødé ✓.txt",
    ],
)
def test_storage_keys_stay_under_the_storage_root(user, session, artifact_root, name):
    artifact = artifact_put(owner=user, session=session, name=name, data=b"secret")

    path = (artifact_root / artifact.storage_key).resolve()
    assert path.is_relative_to(artifact_root.resolve())
    assert path.parent.parent == (artifact_root / str(session.pk)).resolve()
    assert path.parent.name == str(artifact.pk)
    assert stored_files(artifact_root) == [path]
    assert artifact.name == name  # the name is kept as given; only the key is made safe


def test_safe_filename():
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("..") == "artifact"
    assert safe_filename('a"b;\r\nc.txt') == "a_b_c.txt"
    assert safe_filename("résumé.pdf") == "resume.pdf"
    long = safe_filename("x" * 300 + ".json")
    assert len(long) == 100 and long.endswith(".json")


@pytest.mark.parametrize(
    ("name", "content_type", "field"),
    [
        ("", "text/plain", "name"),
        ("   ", "text/plain", "name"),
        ("x" * 256, "text/plain", "name"),
        ("a\nb", "text/plain", "name"),
        ("evil\u202etxt.exe", "text/plain", "name"),
        ("ok", "not a type", "content_type"),
        ("ok", "text/plain\r\nX-Injected: 1", "content_type"),
    ],
)
def test_bad_names_and_content_types_are_refused(user, session, artifact_root, name, content_type, field):
    with pytest.raises(ArtifactInvalid) as raised:
        artifact_put(owner=user, session=session, name=name, data=b"x", content_type=content_type)
    assert raised.value.field == field
    assert Artifact.objects.count() == 0 and stored_files(artifact_root) == []


def test_text_files_are_refused(user, session, artifact_root):
    with pytest.raises(ArtifactInvalid):
        artifact_put(owner=user, session=session, name="t", data=io.StringIO("text"))
    assert stored_files(artifact_root) == []


def test_a_session_or_run_of_someone_else_is_refused(user, other_user, session):
    with pytest.raises(ArtifactInvalid) as raised:
        artifact_put(owner=other_user, session=session, name="x", data=b"x")
    assert raised.value.field == "session"

    other_session = session_create(owner=user, name="s2")
    run, _ = run_submit(user=user, session_id=other_session.pk, kind="echo", payload={})
    with pytest.raises(ArtifactInvalid) as raised:
        artifact_put(owner=user, session=session, name="x", data=b"x", run=run)
    assert raised.value.field == "run"
    assert Artifact.objects.count() == 0


def test_selectors_scope_by_owner_and_let_staff_see_all(user, other_user, session, make_user):
    mine = artifact_put(owner=user, session=session, name="mine", data=b"1")
    theirs = artifact_put(
        owner=other_user, session=session_create(owner=other_user, name="t"), name="theirs", data=b"2"
    )
    staff = make_user("staff", is_staff=True)

    assert list(artifact_list_for_user(user=user)) == [mine]
    assert artifact_get_for_user(user=user, artifact_id=theirs.pk) is None
    assert artifact_get_for_user(user=staff, artifact_id=theirs.pk) == theirs
    assert set(artifact_list_for_user(user=staff)) == {mine, theirs}
    assert list(artifact_list_for_user(user=user, session_id=session.pk)) == [mine]


def test_delete_removes_the_bytes_after_commit(
    user, session, artifact_root, django_capture_on_commit_callbacks
):
    artifact = artifact_put(owner=user, session=session, name="gone.txt", data=b"bye")
    assert stored_files(artifact_root)

    with django_capture_on_commit_callbacks(execute=True):
        artifact_delete(artifact=artifact)

    assert Artifact.objects.count() == 0
    assert stored_files(artifact_root) == []
    assert not (artifact_root / str(session.pk) / str(artifact.pk)).exists()


def test_deleting_the_session_removes_its_artifacts_bytes(
    user, session, artifact_root, django_capture_on_commit_callbacks
):
    artifact_put(owner=user, session=session, name="a", data=b"a")
    artifact_put(owner=user, session=session, name="b", data=b"b")

    with django_capture_on_commit_callbacks(execute=True):
        session.delete()

    assert Artifact.objects.count() == 0 and stored_files(artifact_root) == []


def test_a_rolled_back_delete_keeps_the_bytes(
    user, session, artifact_root, django_capture_on_commit_callbacks
):
    artifact = artifact_put(owner=user, session=session, name="kept", data=b"k")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        artifact_delete(artifact=artifact)

    # the callback exists but has not run: until commit, the bytes are still there
    assert len(callbacks) == 1 and len(stored_files(artifact_root)) == 1


def test_the_storage_is_the_configured_one(artifact_root):
    assert storages["artifacts"].location == str(artifact_root)
