"""BoundedJSONField: every way a value can break its limits gets its own reason."""

from __future__ import annotations

import math

import pytest
from rest_framework import serializers

from apps.core.validators import MAX_JSON_DEPTH, BoundedJSONField


def _refusal(value: object, **kwargs: object) -> str:
    with pytest.raises(serializers.ValidationError) as caught:
        BoundedJSONField(**kwargs).run_validation(value)
    return str(caught.value.detail[0])


def test_a_plain_object_passes_as_it_is():
    value = {"text": "héllo", "n": [1, 2.5, None, True]}
    assert BoundedJSONField().run_validation(value) is value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"a": {1, 2}}, "valid JSON"),
        ({"a": object()}, "valid JSON"),
        ({"a": math.nan}, "finite JSON"),
        ({"a": [math.inf]}, "finite JSON"),
        ({"a": "nul\x00"}, "NUL"),
        ({"a": "\ud800"}, "lone surrogate"),
        ([1, 2], "JSON object"),
        ({"a": "x" * 200}, "Too large"),
    ],
)
def test_each_fault_has_its_reason(value, reason):
    assert reason in _refusal(value, max_bytes=100)


def test_a_value_that_holds_itself_is_not_json():
    circular: dict = {}
    circular["self"] = circular
    assert "valid JSON" in _refusal(circular)


def test_nesting_thousands_deep_is_refused_without_recursing():
    value: object = 1
    for _ in range(100_000):
        value = [value]
    assert f"deeper than {MAX_JSON_DEPTH}" in _refusal({"a": value})


def _nested(levels: int) -> dict:
    value: object = 1
    for _ in range(levels - 1):
        value = [value]
    return {"a": value}


def test_nesting_at_the_limit_passes_one_deeper_does_not():
    assert BoundedJSONField().run_validation(_nested(MAX_JSON_DEPTH)) == _nested(MAX_JSON_DEPTH)
    assert f"deeper than {MAX_JSON_DEPTH}" in _refusal(_nested(MAX_JSON_DEPTH + 1))


def test_text_that_only_looks_like_a_fault_passes():
    brackets = {"a": "[{" * 100, "b": [[1], [2], [3]] * 20, "escaped": "\\u0000 is how JSON writes NUL"}
    assert BoundedJSONField().run_validation(brackets) is brackets
