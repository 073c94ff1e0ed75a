from __future__ import annotations

from rest_framework import serializers

from apps.sessions.models import POLICY_PRESETS, Session


class SessionCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    policy = serializers.ChoiceField(choices=POLICY_PRESETS, default="default")


class SessionOutputSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = Session
        fields = ["id", "name", "policy", "owner", "created_at"]


class WorkspaceFileOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    size = serializers.IntegerField()
    modified_at = serializers.DateTimeField()


class WorkspaceOutputSerializer(serializers.Serializer):
    files = WorkspaceFileOutputSerializer(many=True)
    total_bytes = serializers.IntegerField()
    truncated = serializers.BooleanField()
