"""A session's workspace over HTTP: list, fetch, delete; owner scoping; no way out of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from apps.sessions.workspace import session_lock_path, workspace_dir

pytestmark = pytest.mark.django_db


@pytest.fixture
def files(settings, tmp_path, session) -> Path:
    settings.RUN_WORKSPACE_ROOT = tmp_path / "workspaces"
    root = workspace_dir(session.pk)
    (root / "data").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha")
    (root / "data" / "b.bin").write_bytes(b"\x00" * 10)
    return root


def url(session, name: str = "") -> str:
    return f"/api/v1/sessions/{session.pk}/workspace" + (f"/{name}" if name else "")


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_list_fetch_and_delete(api, session, files):
    listing = api.get(url(session)).json()
    assert [(f["name"], f["size"]) for f in listing["files"]] == [("a.txt", 5), ("data/b.bin", 10)]
    assert listing["total_bytes"] == 15 and listing["truncated"] is False

    fetched = api.get(url(session, "data/b.bin"))
    assert fetched.status_code == 200 and body(fetched) == b"\x00" * 10
    assert fetched["Content-Disposition"].startswith('attachment; filename="b.bin"')
    assert body(api.get(url(session, "a.txt/"))) == b"alpha"  # with its trailing slash too

    assert api.delete(url(session, "a.txt")).status_code == 204
    assert api.delete(url(session, "data")).status_code == 204  # a directory and all in it
    assert api.get(url(session)).json()["files"] == []
    assert api.delete(url(session, "a.txt")).json()["error"]["code"] == "not_found"


def test_an_empty_workspace_lists_nothing(api, session, settings, tmp_path):
    settings.RUN_WORKSPACE_ROOT = tmp_path
    assert api.get(url(session)).json() == {"files": [], "total_bytes": 0, "truncated": False}
    assert api.get(url(session, "x")).status_code == 404


def test_another_users_session_is_404(other_api, session, files):
    assert other_api.get(url(session)).status_code == 404
    assert other_api.get(url(session, "a.txt")).status_code == 404
    assert other_api.delete(url(session, "a.txt")).status_code == 404
    assert (files / "a.txt").exists()


@pytest.mark.parametrize(
    "name",
    ["../x", "data/../../x", "./a.txt", "data//b.bin", "%2Fetc%2Fpasswd", "data/%2E%2E/%2E%2E/x"],
)
def test_names_that_climb_out_are_400(api, session, files, name):
    response = api.get(url(session, name))
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"


def test_links_are_never_followed(api, session, files, tmp_path):
    # given links the sandboxed code left: to a host file, to a directory outside, and inside
    outside = tmp_path / "secret.txt"
    outside.write_text("host secret")
    os.symlink(outside, files / "escape")
    os.symlink(tmp_path, files / "dir-escape")
    os.symlink("a.txt", files / "inner")

    for name in ("escape", "dir-escape/secret.txt", "inner"):
        response = api.get(url(session, name))
        assert response.status_code == 400, name
        assert "links" in response.json()["error"]["message"]
    assert [f["name"] for f in api.get(url(session)).json()["files"]] == ["a.txt", "data/b.bin"]

    # deleting a link removes the link, never its target
    assert api.delete(url(session, "escape")).status_code == 204
    assert outside.read_text() == "host secret" and not (files / "escape").is_symlink()
    assert api.delete(url(session, "dir-escape/secret.txt")).status_code == 400
    assert outside.exists()


def test_a_name_that_is_not_utf8_is_listed_escaped_and_cleared_with_the_workspace(api, session, files):
    (files / os.fsdecode(b"bad-\xff")).write_bytes(b"x")
    names = [f["name"] for f in api.get(url(session)).json()["files"]]
    assert names == ["a.txt", "bad-\\xff", "data/b.bin"]
    assert api.delete(url(session)).status_code == 204
    assert api.get(url(session)).json()["files"] == [] and files.is_dir()


def test_a_fifo_is_not_read(api, session, files):
    os.mkfifo(files / "pipe")
    assert api.get(url(session, "pipe")).status_code == 400


def test_deleting_a_session_deletes_its_workspace_and_lock(
    api, other_api, session, files, django_capture_on_commit_callbacks
):
    lock = session_lock_path(session.pk)
    lock.parent.mkdir(parents=True)
    lock.touch()
    assert other_api.delete(f"/api/v1/sessions/{session.pk}").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/v1/sessions/{session.pk}").status_code == 204
    assert not files.exists() and not lock.exists()
    assert api.get(url(session)).status_code == 404
