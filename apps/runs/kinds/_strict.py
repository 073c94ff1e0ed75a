"""Strict payload fields: JSON types as they are, no coercion.

DRF's fields coerce ("5" -> 5.0, true -> 1.0) and serializers ignore keys they do
not know, so a typo (`tol` for `epsilon`) or a wrong type passes silently. Payloads
are validated with these instead.
"""

from __future__ import annotations

import math
from typing import Any

from rest_framework import serializers


def is_finite(number: int | float) -> bool:
    """math.isfinite for JSON numbers: an integer beyond a float's range (10**400, which JSON
    allows) is not finite here, where math.isfinite raises OverflowError."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


class StrictPayloadSerializer(serializers.Serializer):
    """Refuses keys it does not declare, naming them."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                known = ", ".join(sorted(self.fields))
                raise serializers.ValidationError(
                    {name: [f"Unknown field; this kind takes: {known}."] for name in unknown}
                )
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A JSON number (not a string, not a boolean), finite."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise serializers.ValidationError(f"Must be a number, not {type(data).__name__}.")
        if not is_finite(data):
            raise serializers.ValidationError("Must be a finite number.")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer (not a string, a boolean or a float)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError(f"Must be an integer, not {type(data).__name__}.")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean (not "true", not 1)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            raise serializers.ValidationError(f"Must be true or false, not {type(data).__name__}.")
        return data


class StrictChoiceField(serializers.ChoiceField):
    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"Must be a string, not {type(data).__name__}.")
        return super().to_internal_value(data)
