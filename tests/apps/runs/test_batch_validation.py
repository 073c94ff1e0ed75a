"""A batch's plainly valid runs, and a plainly valid single submission, skip DRF's per-field
validation: what comes out, and every error, is what RunSubmitInputSerializer gives."""

from __future__ import annotations

import uuid

import pytest
from rest_framework import serializers

from apps.core.validators import validate_each
from apps.runs.api.serializers import (
    RunBatchSubmitInputSerializer,
    RunSubmitInputSerializer,
    submission_values,
)

SESSION = str(uuid.uuid4())

VALID = [
    {"session": SESSION, "kind": "echo", "payload": {"text": "héllo", "n": [1, 2.5, None]}, "priority": 9},
    {"session": SESSION, "kind": "echo"},
    {"session": SESSION.upper(), "kind": "sleep", "payload": {"seconds": 1}, "priority": 0, "extra": 1},
    {"session": SESSION, "kind": "echo", "payload": {}, "priority": "5"},  # the serializer's: "5" -> 5
    {"session": SESSION, "kind": " echo ", "payload": {}},  # the serializer's: trimmed
]

INVALID = [
    {"session": SESSION[:-1], "kind": "echo"},
    {"session": SESSION + "\n", "kind": "echo"},  # "$" matches before a final newline: was a 500
    {"session": "{" + SESSION + "}", "kind": "echo"},
    {"session": SESSION, "kind": "echo", "payload": None},
    {"session": SESSION, "kind": "echo", "payload": [1, 2]},
    {"session": SESSION, "kind": "echo", "priority": True},
    {"session": SESSION, "kind": "echo", "priority": 10},
    {"session": SESSION, "kind": "echo", "payload": {"a": "nul\x00"}},
    {"session": SESSION, "kind": "echo", "payload": {"a": float("nan")}},
    {
        "session": SESSION,
        "kind": "echo",
        "payload": {"deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
    },
    {"session": SESSION, "kind": "x" * 65},
    {"session": SESSION, "kind": ""},
    {"session": SESSION},
    {"kind": "echo"},
]


def _cleaned(runs: list[dict]) -> list[dict] | dict:
    serializer = RunBatchSubmitInputSerializer(data={"runs": runs})
    if serializer.is_valid():
        return [dict(item) for item in serializer.validated_data["runs"]]
    return serializer.errors


def _by_drf(runs: list[dict]) -> list[dict] | dict:
    try:
        return [dict(item) for item in validate_each(runs, RunSubmitInputSerializer)]
    except serializers.ValidationError as exc:
        return {"runs": exc.detail}


def test_plainly_valid_runs_come_out_as_the_serializer_cleans_them():
    assert _cleaned(VALID) == _by_drf(VALID)
    for item in VALID:
        assert _cleaned([item]) == _by_drf([item])
    assert _cleaned(VALID)[1]["payload"] == {} and _cleaned(VALID)[1]["priority"] == 0


@pytest.mark.parametrize("item", INVALID, ids=range(len(INVALID)))
def test_an_invalid_run_gets_the_serializers_error(item):
    runs = [VALID[0], item]
    errors = _cleaned(runs)
    assert isinstance(errors, dict) and "1" in errors["runs"]
    assert errors == _by_drf(runs)


@pytest.mark.parametrize("item", ["echo", 5, None, [VALID[0]]])
def test_a_run_that_is_not_a_json_object_is_refused_by_its_index(item):
    errors = _cleaned([VALID[0], item])
    assert list(errors["runs"]) == [1]  # ListField's key: the index
    assert "Expected a dictionary of items" in str(errors["runs"][1]) or "may not be null" in str(
        errors["runs"][1]
    )


def _single(data: object) -> dict:
    try:
        return {"ok": dict(submission_values(data))}
    except serializers.ValidationError as exc:
        return {"error": exc.detail}


def _single_by_drf(data: object) -> dict:
    serializer = RunSubmitInputSerializer(data=data)
    if serializer.is_valid():
        return {"ok": dict(serializer.validated_data)}
    return {"error": serializer.errors}


@pytest.mark.parametrize("data", [*VALID, *INVALID, "echo", 5, None, [VALID[0]]])
def test_a_single_submission_is_cleaned_or_refused_as_the_serializer_does(data):
    assert _single(data) == _single_by_drf(data)
