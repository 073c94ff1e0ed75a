from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from apps.artifacts.models import Artifact
from apps.artifacts.services import artifact_put
from tests.apps.artifacts.conftest import stored_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-unused-123")
    client = Client()
    client.force_login(admin)
    return client


def test_changelist_and_page_show_the_artifact_with_a_download_link(admin_client, user, session):
    artifact = artifact_put(owner=user, session=session, name="plan.npy", data=b"\x93NUMPY")
    download = reverse("artifact-download", args=[artifact.pk])

    listing = admin_client.get(reverse("admin:artifacts_artifact_changelist")).content.decode()
    page = admin_client.get(reverse("admin:artifacts_artifact_change", args=[artifact.pk])).content.decode()

    assert "plan.npy" in listing and f'href="{download}"' in listing
    assert artifact.sha256 in page and f'href="{download}"' in page
    # the link works for the logged-in admin (session auth), on someone else's artifact
    response = admin_client.get(download)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"\x93NUMPY"


def test_no_add_and_delete_removes_the_bytes(
    admin_client, user, session, artifact_root, django_capture_on_commit_callbacks
):
    artifact = artifact_put(owner=user, session=session, name="x", data=b"x")
    assert admin_client.get(reverse("admin:artifacts_artifact_add")).status_code == 403

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:artifacts_artifact_delete", args=[artifact.pk]), {"post": "yes"}
        )

    assert response.status_code == 302
    assert Artifact.objects.count() == 0 and stored_files(artifact_root) == []
