"""The review page's marking of matched spans: offsets into the raw text, JSON and HTML
escaping around them, and spans that do not fit."""

from __future__ import annotations

import json
import re

from apps.governance.highlight import json_with_marks, marked_string, matched_text, spans_by_field
from apps.governance.scanning import scan_value


def unmarked(html: str) -> str:
    """The JSON text a reader sees, without the marks and the HTML escaping."""
    text = re.sub(r"</?mark>", "", html)
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#x27;", "'"), ("&amp;", "&")):
        text = text.replace(entity, char)
    return text


def test_a_span_is_marked_at_its_offsets_in_the_raw_text_not_the_json():
    # a newline and a quote before the span: JSON writes them as two characters each
    text = 'line one\nsaid "hi" [[jailbreak:9]] <end>'
    start = text.index("[[")

    html = marked_string(text, [(start, start + len("[[jailbreak:9]]"))])

    assert "<mark>[[jailbreak:9]]</mark>" in html
    assert html.startswith("&quot;line one\\nsaid \\&quot;hi\\&quot; <mark>")
    assert html.endswith("</mark> &lt;end&gt;&quot;")
    assert json.loads(unmarked(html)) == text


def test_overlapping_spans_merge_and_spans_past_the_end_are_cut():
    assert marked_string("abcdefgh", [(1, 4), (3, 6), (7, 99), (12, 20)]) == (
        "&quot;a<mark>bcdef</mark>g<mark>h</mark>&quot;"
    )


def test_malformed_spans_are_left_out():
    spans = [
        None,
        {"field": "payload.a", "start": 2, "end": 1},
        {"field": "payload.a", "start": True, "end": 3},
        {"field": "payload.a", "start": "0", "end": 3},
        {"start": 0, "end": 3},
        {"field": "payload.a", "start": 0, "end": 3},
    ]
    assert spans_by_field(spans) == {"payload.a": [(0, 3)]}


def test_the_scanners_spans_land_on_their_text_in_nested_payloads():
    payload = {
        "prompt": "x [[jailbreak:9]]",
        "items": ["fine text", {"deep": "<i>[[unsafe:4]]</i>"}],
        "n": 3,
        "[[anomaly:2]] as a key": None,
    }
    inputs = {"kind": "echo", "payload": payload}
    findings = scan_value(payload, path="payload", source="input")
    assert {f["span"]["field"] for f in findings} == {
        "payload.prompt",
        "payload.items[1].deep",
        "payload.<key>",
    }

    html = json_with_marks(inputs, spans_by_field(f["span"] for f in findings))

    assert html.count("<mark>") == 3
    assert "&lt;i&gt;<mark>[[unsafe:4]]</mark>&lt;/i&gt;" in html
    assert "<mark>[[anomaly:2]]</mark> as a key&quot;: null" in html
    assert json.loads(unmarked(html)) == inputs
    matched = sorted(matched_text(inputs, f["span"]) for f in findings)
    assert matched == ["[[anomaly:2]]", "[[jailbreak:9]]", "[[unsafe:4]]"]
    assert matched_text(inputs, {"field": "payload.n", "start": 0, "end": 1}) is None
