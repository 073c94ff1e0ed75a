from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.artifacts.models import NAME_MAX_LENGTH, Artifact
from apps.core.validators import StrictUUIDField


class ArtifactUploadInputSerializer(serializers.Serializer):
    """The query string of an upload; the body is the file itself."""

    session = StrictUUIDField()
    name = serializers.CharField(max_length=NAME_MAX_LENGTH, trim_whitespace=False)


class ArtifactListFilterSerializer(serializers.Serializer):
    session = StrictUUIDField(required=False)
    run = StrictUUIDField(required=False)


class ArtifactOutputSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    download = serializers.SerializerMethodField()

    class Meta:
        model = Artifact
        fields = [
            "id",
            "name",
            "content_type",
            "size",
            "sha256",
            "session",
            "run",
            "owner",
            "created_at",
            "download",
        ]

    @extend_schema_field(OpenApiTypes.STR)
    def get_download(self, artifact: Artifact) -> str:
        return reverse("artifact-download", args=[artifact.pk])
