"""Input limits shared by the API serializers."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from apps.traces.chain import canonical_json

MAX_JSON_DEPTH = 32


def _has_nul(value: Any) -> bool:
    # PostgreSQL text and jsonb cannot hold U+0000.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


class BoundedJSONField(serializers.JSONField):
    """A JSON value with a size and nesting limit (a JSON object unless told otherwise)."""

    def __init__(self, *, max_bytes: int | None = None, object_only: bool = True, **kwargs: Any):
        self.max_bytes = max_bytes
        self.object_only = object_only
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if self.object_only and not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        limit = self.max_bytes or settings.MAX_PAYLOAD_BYTES
        try:
            size = len(canonical_json(value).encode())
        except ValueError as exc:
            raise serializers.ValidationError("Must be finite JSON (no NaN or Infinity).") from exc
        if size > limit:
            raise serializers.ValidationError(f"Too large: {size} bytes, the limit is {limit}.")
        if _depth(value) > MAX_JSON_DEPTH:
            raise serializers.ValidationError(f"Nested deeper than {MAX_JSON_DEPTH} levels.")
        if _has_nul(value):
            raise serializers.ValidationError("Strings may not contain the NUL character (U+0000).")
        return value


def validate_each(items: list[Any], serializer_class: type[serializers.Serializer]) -> list[dict[str, Any]]:
    """Validate every item of a list; errors are keyed by the item's index."""
    cleaned, errors = [], {}
    for index, item in enumerate(items):
        serializer = serializer_class(data=item if isinstance(item, dict) else {})
        if serializer.is_valid():
            cleaned.append(serializer.validated_data)
        else:
            errors[str(index)] = serializer.errors
    if errors:
        raise serializers.ValidationError(errors)
    return cleaned
