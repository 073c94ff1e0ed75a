"""Artifacts in an S3-compatible store: moto's server on the loopback stands in for S3 or MinIO.

The storage is configured the way a deployment configures it, by ARTIFACTS_S3_* variables:
settings are loaded in a subprocess with those variables, and the STORAGES entry they
produce is the one these tests run on.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from apps.artifacts.exceptions import ArtifactTooLarge
from apps.artifacts.models import Artifact
from apps.artifacts.services import artifact_open, artifact_put

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
BUCKET = "limitgraph-artifacts"
PREFIX = "lg"
MiB = 1024 * 1024


def _artifact_storage_from_env(**env: str) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, django; django.setup(); from django.conf import settings; "
            "print(json.dumps(settings.STORAGES['artifacts'], default=str))",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per fake S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, settings) -> Iterator[object]:
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="limitgraph-test",
        aws_secret_access_key="limitgraph-test-secret",
    )
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": _artifact_storage_from_env(
            ARTIFACTS_S3_BUCKET=BUCKET,
            ARTIFACTS_S3_PREFIX=PREFIX,
            ARTIFACTS_S3_ENDPOINT_URL=s3_endpoint,
            ARTIFACTS_S3_REGION="us-east-1",
            ARTIFACTS_S3_ACCESS_KEY_ID="limitgraph-test",
            ARTIFACTS_S3_SECRET_ACCESS_KEY="limitgraph-test-secret",
            ARTIFACTS_S3_ADDRESSING_STYLE="path",
        ),
    }
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _keys(client) -> list[str]:  # type: ignore[no-untyped-def]
    return [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_the_filesystem_is_the_default_and_a_bucket_selects_s3():
    default = _artifact_storage_from_env(ARTIFACTS_DIR="/srv/lg-artifacts")
    assert default["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert default["OPTIONS"]["location"] == "/srv/lg-artifacts"

    s3 = _artifact_storage_from_env(
        ARTIFACTS_S3_BUCKET="b", ARTIFACTS_S3_ENDPOINT_URL="http://minio:9000", ARTIFACTS_S3_REGION="eu-1"
    )
    assert s3["BACKEND"] == "storages.backends.s3.S3Storage"
    assert s3["OPTIONS"]["bucket_name"] == "b" and s3["OPTIONS"]["endpoint_url"] == "http://minio:9000"
    assert s3["OPTIONS"]["region_name"] == "eu-1" and s3["OPTIONS"]["default_acl"] is None


def test_round_trip_through_the_api(api, session, s3, django_capture_on_commit_callbacks):
    data = os.urandom(3 * MiB)  # over the 1 MiB request limit, and several upload chunks

    created = api.generic(
        "POST",
        f"/api/v1/artifacts?session={session.pk}&name=../weights.bin",
        data,
        content_type="application/x-npy",
    )

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size"] == len(data)
    artifact = Artifact.objects.get(pk=body["id"])
    key = f"{PREFIX}/{session.pk}/{artifact.pk}/weights.bin"
    assert _keys(s3) == [key]
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == len(data) and head["ContentType"] == "application/x-npy"
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data

    downloaded = api.get(f"/api/v1/artifacts/{artifact.pk}/download")
    assert downloaded.status_code == 200
    assert downloaded["Content-Length"] == str(len(data)) and downloaded["ETag"] == f'"{body["sha256"]}"'
    content = b"".join(downloaded.streaming_content)
    assert hashlib.sha256(content).hexdigest() == body["sha256"]

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/v1/artifacts/{artifact.pk}").status_code == 204
    assert _keys(s3) == []


def test_service_round_trip_with_a_file_object(user, session, s3):
    data = os.urandom(MiB + 17)

    artifact = artifact_put(owner=user, session=session, name="input.npy", data=io.BytesIO(data))

    with artifact_open(artifact=artifact) as stored:
        assert stored.read() == data
    assert artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert _keys(s3) == [f"{PREFIX}/{artifact.storage_key}"]


def test_over_the_limit_stores_nothing_in_the_bucket(user, session, s3, settings):
    settings.ARTIFACT_MAX_BYTES = 1000

    with pytest.raises(ArtifactTooLarge):
        artifact_put(owner=user, session=session, name="big", data=io.BytesIO(b"x" * 5000))

    assert _keys(s3) == [] and Artifact.objects.count() == 0
