"""Input limits shared by the API serializers."""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from rest_framework import serializers

from apps.core.hashchain import canonical_json

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


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """True when `value` nests containers deeper than `limit`. Iterative: a value
    nested thousands deep must not exhaust the interpreter's stack here."""
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            if level >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return False


def _too_deep() -> serializers.ValidationError:
    return serializers.ValidationError(f"Nested deeper than {MAX_JSON_DEPTH} levels (the limit).")


class BoundedJSONField(serializers.JSONField):
    """A JSON value with a size and nesting limit (a JSON object unless told otherwise)."""

    def __init__(self, *, max_bytes: int | None = None, object_only: bool = True, **kwargs: Any):
        self.max_bytes = max_bytes
        self.object_only = object_only
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        # A parsed value is checked by the canonical dump below (JSONField's own check would
        # dump it once more first)
        binary = self.binary or getattr(data, "is_json_string", False)
        value = super().to_internal_value(data) if binary else data
        if self.object_only and not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        limit = self.max_bytes or settings.MAX_PAYLOAD_BYTES
        try:
            text = canonical_json(value)
            size = len(text.encode())
        except RecursionError:
            raise _too_deep() from None  # deeper than the interpreter's limit, far beyond ours
        except UnicodeEncodeError as exc:
            raise serializers.ValidationError(
                f"Strings must be valid Unicode: {exc.object[exc.start : exc.end]!r} is a lone surrogate."
            ) from exc
        except ValueError as exc:
            if "Circular reference" in str(exc):
                self.fail("invalid")
            raise serializers.ValidationError("Must be finite JSON (no NaN or Infinity).") from exc
        except TypeError:
            self.fail("invalid")
        # Walked only when the text could hide a fault: a value nested deeper than the limit opens
        # more containers than that, and a NUL is written "\u0000"
        if text.count("[") + text.count("{") > MAX_JSON_DEPTH and json_depth_exceeds(value, MAX_JSON_DEPTH):
            raise _too_deep()
        if size > limit:
            raise serializers.ValidationError(f"Too large: {size} bytes, the limit is {limit}.")
        if "\\u0000" in text and _has_nul(value):
            raise serializers.ValidationError("Strings may not contain the NUL character (U+0000).")
        return value


# One field for every payload that is any JSON object within the limits: it keeps no state
# between validations.
ANY_JSON_OBJECT = BoundedJSONField()


def validate_each(
    items: list[Any], serializer_class: type[serializers.Serializer], context: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Validate every item of a list; errors are keyed by the item's index.

    One serializer validates them all (what is_valid does, item by item): a serializer builds
    its fields when it is made, which cost more than validating a small item."""
    cleaned, errors = [], {}
    serializer = serializer_class(context=context or {})
    for index, item in enumerate(items):
        try:
            cleaned.append(serializer.run_validation(item if isinstance(item, dict) else {}))
        except serializers.ValidationError as exc:
            errors[str(index)] = exc.detail
    if errors:
        raise serializers.ValidationError(errors)
    return cleaned


# At least one character that is not whitespace, and no NUL (PostgreSQL text cannot hold
# U+0000). As a RegexValidator the schema declares it too (drf-spectacular's `pattern`).
NAME_PATTERN = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"


class NameField(serializers.CharField):
    """A name: stored without surrounding whitespace, its length limit counting what was sent.

    DRF's CharField trims first and measures after, so `max_length` + spaces passed although
    the schema's maxLength said otherwise; here the schema and the validation agree.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.append(
            RegexValidator(NAME_PATTERN, "Needs a character other than whitespace, and no NUL (U+0000).")
        )

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, str) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


CANONICAL_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class StrictUUIDField(serializers.UUIDField):
    """A UUID in its canonical 8-4-4-4-12 form: the schema's `format: uuid`.

    DRF's UUIDField takes whatever uuid.UUID() parses (32 bare hex digits, braces,
    `urn:uuid:`) and any JSON integer as the UUID's number, so input the schema calls
    invalid was accepted.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, uuid.UUID):
            return data
        if not isinstance(data, str) or not CANONICAL_UUID.fullmatch(data):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)
