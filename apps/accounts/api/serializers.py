from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from apps.accounts.models import ApiKey
from apps.core.validators import NameField


class ApiKeyCreateInputSerializer(serializers.Serializer):
    name = NameField(max_length=100)
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="In the future; never expires when absent."
    )


class ApiKeyRotateInputSerializer(serializers.Serializer):
    overlap_seconds = serializers.IntegerField(
        min_value=0,
        max_value=settings.API_KEY_MAX_ROTATION_OVERLAP_SECONDS,
        default=3600,
        help_text="How long the old key keeps working beside the new one.",
    )
    expires_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The new key's expiry; the old key's when absent (at most that, rotating with the key).",
    )


class ApiKeyRevokeQuerySerializer(serializers.Serializer):
    cascade = serializers.BooleanField(
        required=False, default=False, help_text="Also revoke every key made with this one, on down."
    )


class ApiKeyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "created_by_key",
            "rotated_from",
        ]


class ApiKeyCreatedOutputSerializer(ApiKeyOutputSerializer):
    key = serializers.CharField(help_text="The key itself: shown in this response only.")

    class Meta(ApiKeyOutputSerializer.Meta):
        fields = [*ApiKeyOutputSerializer.Meta.fields, "key"]


class ApiKeyRevokedOutputSerializer(ApiKeyOutputSerializer):
    cascaded = serializers.ListField(
        child=serializers.IntegerField(), help_text="The other keys revoked with it (cascade)."
    )

    class Meta(ApiKeyOutputSerializer.Meta):
        fields = [*ApiKeyOutputSerializer.Meta.fields, "cascaded"]
