from __future__ import annotations

from django.urls import path

from apps.artifacts.api import views

urlpatterns = [
    path("artifacts", views.ArtifactListUploadApi.as_view(), name="artifact-list"),
    path("artifacts/<uuid:artifact_id>", views.ArtifactDetailApi.as_view(), name="artifact-detail"),
    path(
        "artifacts/<uuid:artifact_id>/download",
        views.ArtifactDownloadApi.as_view(),
        name="artifact-download",
    ),
]
