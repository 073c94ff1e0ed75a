"""The artifact API: upload, metadata, streamed download, delete; owner scoping and limits."""

from __future__ import annotations

import hashlib
import os
import tracemalloc

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from apps.artifacts.models import Artifact
from apps.artifacts.services import artifact_put
from apps.sessions.services import session_create
from tests.apps.artifacts.conftest import stored_files
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

ARTIFACTS = "/api/v1/artifacts"
MiB = 1024 * 1024


def upload(client: APIClient, session_id: object, name: str, data: bytes, content_type: str = "text/csv"):
    return client.generic(
        "POST", f"{ARTIFACTS}?session={session_id}&name={name}", data, content_type=content_type
    )


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    if code is not None:
        assert error["code"] == code
    return error


def download(client: APIClient, artifact_id: object, **headers: str):
    return client.get(f"{ARTIFACTS}/{artifact_id}/download", headers=headers)


def test_upload_metadata_download_round_trip(api, session, artifact_root):
    data = b"a,b\n" + os.urandom(4096)

    created = upload(api, session.pk, "table.csv", data)

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "table.csv" and body["content_type"] == "text/csv"
    assert body["size"] == len(data) and body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["session"] == str(session.pk) and body["run"] is None and body["owner"] == "alice"
    assert body["download"] == f"{ARTIFACTS}/{body['id']}/download"
    assert api.get(f"{ARTIFACTS}/{body['id']}").json() == body

    response = download(api, body["id"])
    assert response.status_code == 200
    content = b"".join(response.streaming_content)
    assert hashlib.sha256(content).hexdigest() == body["sha256"] and content == data
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Length"] == str(len(data))
    assert response["Content-Disposition"] == 'attachment; filename="table.csv"'
    assert response["ETag"] == f'"{body["sha256"]}"'
    assert len(stored_files(artifact_root)) == 1


def test_download_answers_whatever_the_client_accepts(api, session):
    artifact_id = upload(api, session.pk, "img.png", b"\x89PNG", content_type="image/png").json()["id"]

    response = download(api, artifact_id, Accept="image/png")

    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == b"\x89PNG"


def test_if_none_match_with_the_etag_is_304(api, session):
    body = upload(api, session.pk, "x.bin", b"same").json()

    response = download(api, body["id"], **{"If-None-Match": f'"{body["sha256"]}"'})

    assert response.status_code == 304 and response["ETag"] == f'"{body["sha256"]}"'
    assert download(api, body["id"], **{"If-None-Match": '"other"'}).status_code == 200


def test_download_filename_is_safe(api, session):
    response = upload(api, session.pk, "..%2F..%2Fetc%2Fpasswd%22.txt", b"x")
    assert response.status_code == 201
    assert response.json()["name"] == '../../etc/passwd".txt'

    downloaded = download(api, response.json()["id"])

    assert downloaded["Content-Disposition"] == 'attachment; filename="passwd_.txt"'


def test_a_name_with_a_newline_is_400(api, session, artifact_root):
    error = assert_error(upload(api, session.pk, "a%0Ab", b"x"), 400, "invalid")
    assert "name" in error["fields"]
    assert Artifact.objects.count() == 0 and stored_files(artifact_root) == []


def test_another_users_artifacts_are_404(
    api, other_api, session, artifact_root, django_capture_on_commit_callbacks
):
    artifact_id = upload(api, session.pk, "private.txt", b"mine").json()["id"]

    assert_error(other_api.get(f"{ARTIFACTS}/{artifact_id}"), 404, "not_found")
    assert_error(download(other_api, artifact_id), 404, "not_found")
    with django_capture_on_commit_callbacks(execute=True):
        assert_error(other_api.delete(f"{ARTIFACTS}/{artifact_id}"), 404, "not_found")
    assert other_api.get(ARTIFACTS).json()["count"] == 0
    assert other_api.get(f"{ARTIFACTS}?session={session.pk}").json()["count"] == 0

    # still there for its owner
    assert Artifact.objects.filter(pk=artifact_id).exists() and len(stored_files(artifact_root)) == 1
    assert b"".join(download(api, artifact_id).streaming_content) == b"mine"


def test_staff_can_read_any_artifact(api, session, make_user):
    artifact_id = upload(api, session.pk, "x", b"x").json()["id"]
    staff = client_for(make_user("admin", is_staff=True))
    assert staff.get(f"{ARTIFACTS}/{artifact_id}").status_code == 200


def test_upload_into_another_users_session_is_400_and_stores_nothing(api, other_user, artifact_root):
    foreign = session_create(owner=other_user, name="theirs")

    error = assert_error(upload(api, foreign.pk, "x", b"x"), 400, "invalid")

    assert error["fields"] == {"session": ["Session not found."]}
    assert stored_files(artifact_root) == []


def test_unauthenticated_is_401(session):
    artifact = artifact_put(owner=session.owner, session=session, name="x", data=b"x")
    anonymous = APIClient()
    for response in (
        upload(anonymous, session.pk, "x", b"x"),
        anonymous.get(ARTIFACTS),
        anonymous.get(f"{ARTIFACTS}/{artifact.pk}"),
        download(anonymous, artifact.pk),
        anonymous.delete(f"{ARTIFACTS}/{artifact.pk}"),
    ):
        assert_error(response, 401)


@override_settings(ARTIFACT_MAX_BYTES=2 * MiB)
def test_an_upload_over_the_artifact_limit_is_413_and_stores_nothing(api, session, artifact_root):
    response = upload(
        api, session.pk, "big.bin", b"x" * (2 * MiB + 1), content_type="application/octet-stream"
    )

    assert_error(response, 413, "request_too_large")
    assert Artifact.objects.count() == 0 and stored_files(artifact_root) == []


@override_settings(ARTIFACT_MAX_BYTES=2 * MiB)
def test_only_the_upload_route_takes_bodies_over_the_request_limit(api, session):
    # 1.5 MiB: over MAX_REQUEST_BODY_BYTES (1 MiB), under the artifact limit
    big = b"{" + b" " * (3 * MiB // 2) + b"}"
    assert_error(api.generic("POST", "/api/v1/sessions", big, content_type="application/json"), 413)
    assert upload(api, session.pk, "ok.json", big, content_type="application/json").status_code == 201


def test_a_large_upload_is_streamed_to_storage(api, session, artifact_root):
    data = os.urandom(24 * MiB)

    tracemalloc.start()
    try:
        response = upload(api, session.pk, "large.bin", data, content_type="application/octet-stream")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert response.status_code == 201, response.content
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()
    (stored,) = stored_files(artifact_root)
    assert stored.stat().st_size == len(data)
    # The test client itself copies the body once (its fake socket); a view that read the
    # body into memory would add a second copy.
    assert peak < len(data) + 8 * MiB, f"peak {peak} bytes"
    downloaded = download(api, response.json()["id"])
    digest = hashlib.sha256()
    for chunk in downloaded.streaming_content:
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_an_empty_body_is_an_empty_artifact(api, session):
    response = api.post(f"{ARTIFACTS}?session={session.pk}&name=empty")
    assert response.status_code == 201 and response.json()["size"] == 0
    assert response.json()["content_type"] == "application/octet-stream"


def test_form_content_type_is_stored_as_octet_stream(api, session):
    # curl --data-binary without -H Content-Type sends this
    response = upload(api, session.pk, "x", b"a=b", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201 and response.json()["content_type"] == "application/octet-stream"


def test_multipart_is_415(api, session, artifact_root):
    response = api.post(f"{ARTIFACTS}?session={session.pk}&name=x", {"file": b"x"}, format="multipart")
    assert_error(response, 415, "unsupported_media_type")
    assert stored_files(artifact_root) == []


def test_chunked_upload_is_411(api, session):
    response = api.generic(
        "POST",
        f"{ARTIFACTS}?session={session.pk}&name=x",
        b"x",
        content_type="text/plain",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert_error(response, 411, "length_required")


@pytest.mark.parametrize(
    ("query", "field"),
    [("name=x", "session"), ("session=nope&name=x", "session"), ("session={session}", "name")],
)
def test_bad_query_is_400(api, session, query, field):
    response = api.generic(
        "POST", f"{ARTIFACTS}?{query.format(session=session.pk)}", b"x", content_type="text/plain"
    )
    assert field in assert_error(response, 400, "invalid")["fields"]


def test_bad_content_type_is_400(api, session):
    response = upload(api, session.pk, "x", b"x", content_type="nonsense")
    assert "content_type" in assert_error(response, 400, "invalid")["fields"]


def test_list_filters_by_session_and_run(api, user, session):
    other_session = session_create(owner=user, name="s2")
    first = upload(api, session.pk, "a", b"a").json()["id"]
    second = upload(api, other_session.pk, "b", b"b").json()["id"]

    assert {a["id"] for a in api.get(ARTIFACTS).json()["results"]} == {first, second}
    assert [a["id"] for a in api.get(f"{ARTIFACTS}?session={session.pk}").json()["results"]] == [first]
    assert api.get(f"{ARTIFACTS}?run={session.pk}").json()["count"] == 0
    assert "session" in assert_error(api.get(f"{ARTIFACTS}?session=nope"), 400)["fields"]


def test_delete(api, session, artifact_root, django_capture_on_commit_callbacks):
    artifact_id = upload(api, session.pk, "x", b"x").json()["id"]

    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"{ARTIFACTS}/{artifact_id}")

    assert response.status_code == 204
    assert_error(api.get(f"{ARTIFACTS}/{artifact_id}"), 404)
    assert stored_files(artifact_root) == []


def test_missing_bytes_are_a_json_404(api, session, artifact_root):
    artifact_id = upload(api, session.pk, "x", b"x").json()["id"]
    for path in stored_files(artifact_root):
        path.unlink()

    assert_error(download(api, artifact_id), 404, "not_found")


def test_schema_documents_the_artifact_routes(api):
    paths = api.get("/api/v1/schema/").json()["paths"]
    assert {
        "/api/v1/artifacts",
        "/api/v1/artifacts/{artifact_id}",
        "/api/v1/artifacts/{artifact_id}/download",
    } <= set(paths)
    assert "application/octet-stream" in paths["/api/v1/artifacts"]["post"]["requestBody"]["content"]
