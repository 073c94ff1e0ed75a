from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.bookmarks.models import MAX_TAGS, NAME_MAX_LENGTH, TAG_MAX_LENGTH, SavedRun
from apps.core.validators import BoundedJSONField
from apps.runs.models import MAX_PRIORITY


class SavedRunCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=NAME_MAX_LENGTH)
    kind = serializers.CharField(max_length=64)
    payload = BoundedJSONField(required=False, default=dict)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=TAG_MAX_LENGTH),
        required=False,
        default=list,
        max_length=MAX_TAGS,
    )
    session = serializers.UUIDField(required=False, allow_null=True, default=None)
    priority = serializers.IntegerField(min_value=0, max_value=MAX_PRIORITY, required=False, default=0)


class SavedRunUpdateInputSerializer(SavedRunCreateInputSerializer):
    """Every field optional (PATCH); `"session": null` unsets the session."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, partial=True, **kwargs)


class SavedRunRunInputSerializer(serializers.Serializer):
    payload = BoundedJSONField(
        required=False,
        default=dict,
        help_text="Overrides: a JSON Merge Patch (RFC 7386) on the saved payload.",
    )
    session = serializers.UUIDField(required=False, help_text="Instead of the saved run's session.")
    priority = serializers.IntegerField(min_value=0, max_value=MAX_PRIORITY, required=False)


class SavedRunListFilterSerializer(serializers.Serializer):
    tag = serializers.CharField(max_length=TAG_MAX_LENGTH, required=False)
    q = serializers.CharField(max_length=NAME_MAX_LENGTH, required=False, help_text="Part of the name.")


class SavedRunOutputSerializer(serializers.ModelSerializer):
    tags = serializers.SerializerMethodField()
    last_run = serializers.SerializerMethodField(
        help_text="The last run made from it and its current status."
    )

    class Meta:
        model = SavedRun
        fields = [
            "id",
            "name",
            "kind",
            "payload",
            "tags",
            "session",
            "priority",
            "usage_count",
            "last_run",
            "last_run_at",
            "created_at",
            "updated_at",
        ]

    def get_tags(self, saved: SavedRun) -> list[str]:
        return [tag.name for tag in saved.tags.all()]

    def get_last_run(self, saved: SavedRun) -> dict[str, Any] | None:
        run = saved.last_run
        if run is None:
            return None
        return {
            "id": str(run.pk),
            "status": run.status,
            "progress": run.progress,
            "created_at": run.created_at,
        }
