from __future__ import annotations

from rest_framework import serializers

from apps.accounts.models import ApiKey


class ApiKeyCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class ApiKeyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]


class ApiKeyCreatedOutputSerializer(ApiKeyOutputSerializer):
    key = serializers.CharField(help_text="The key itself: shown in this response only.")

    class Meta(ApiKeyOutputSerializer.Meta):
        fields = [*ApiKeyOutputSerializer.Meta.fields, "key"]
