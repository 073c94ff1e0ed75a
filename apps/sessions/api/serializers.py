from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.validators import NameField
from apps.sessions.models import Session


class SessionCreateInputSerializer(serializers.Serializer):
    name = NameField(max_length=200)
    policy = serializers.CharField(
        max_length=100, required=False, help_text="A policy id, or a preset: permissive, default, strict."
    )


class SessionOutputSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    policy = serializers.SerializerMethodField()

    class Meta:
        model = Session
        fields = ["id", "name", "policy", "owner", "created_at"]

    def get_policy(self, session: Session) -> dict[str, Any]:
        policy = session.policy
        version = policy.active_version
        return {"id": str(policy.pk), "name": policy.name, "version": version.number if version else None}


class WorkspaceFileOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    size = serializers.IntegerField()
    modified_at = serializers.DateTimeField()


class WorkspaceOutputSerializer(serializers.Serializer):
    files = WorkspaceFileOutputSerializer(many=True)
    total_bytes = serializers.IntegerField()
    truncated = serializers.BooleanField()
