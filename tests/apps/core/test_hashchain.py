"""canonical_json: one text for a value, whatever the floats in it look like."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.core.hashchain import _dump, _integral_floats_as_ints, canonical_json


def _rewritten_always(value: object) -> str:
    # the definition: every integral float rewritten, then the canonical dump
    return _dump(_integral_floats_as_ints(value))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1.0, -2.0, 0.0, -0.0, 1e16, 1.5e16, 1e-05, 2.5, 1e300, 123456789.0])
    | st.text(max_size=12)
    | st.sampled_from(["1.0", "e+5", "v1.0.0", "x1e5", ":1.0,", "[2e+16]", "4e5f-1e5"])
    | st.uuids().map(str),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_canonical_json_is_the_rewritten_dump_for_any_value(value):
    assert canonical_json(value) == _rewritten_always(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"a": 1.0, "b": [2.0, -3.0]}, '{"a":1,"b":[2,-3]}'),
        ({"big": 1e20, "half": 1.5e16}, '{"big":100000000000000000000,"half":15000000000000000}'),
        ({"x": 1.05, "s": "v1.0"}, '{"s":"v1.0","x":1.05}'),
        ({"tiny": 1e-05}, '{"tiny":1e-05}'),
        (1.0, "1"),
        ([1.0, 2.0, 1e16], "[1,2,10000000000000000]"),
        ({"id": "4e5f-1e5", "n": 2.0}, '{"id":"4e5f-1e5","n":2}'),
    ],
)
def test_integral_floats_are_written_as_integers(value, text):
    assert canonical_json(value) == text


def test_canonical_json_refuses_what_json_cannot_say():
    with pytest.raises(ValueError):
        canonical_json({"a": math.nan})
    with pytest.raises(ValueError):
        canonical_json([math.inf])
