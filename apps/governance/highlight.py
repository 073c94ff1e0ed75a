"""A trace's inputs and outputs as a reviewer reads them: indented JSON with every matched
span of a finding wrapped in <mark>.

Spans are offsets into the string at a JSON path, written the way apps.governance.scanning
walks a value (`payload.prompt`, `payload.items[2]`, `result.text`; `<key>` for a dict's keys).
Every piece of user text goes through `escape` before it is joined with the markup, so the
result is safe to show although it is built from what a submitter sent.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from apps.governance.scanning import MIN_TEXT_LENGTH, strings_of

INDENT = "  "

Spans = Mapping[str, Sequence[tuple[int, int]]]


def spans_by_field(spans: Iterable[Any]) -> dict[str, list[tuple[int, int]]]:
    """{field: [(start, end), ...]} of the well-formed spans (others, and None, are left out)."""
    by_field: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for span in spans:
        if not isinstance(span, dict):
            continue
        field, start, end = span.get("field"), span.get("start"), span.get("end")
        offsets_ok = all(isinstance(n, int) and not isinstance(n, bool) for n in (start, end))
        if isinstance(field, str) and offsets_ok and 0 <= start < end:
            by_field[field].append((start, end))
    return dict(by_field)


def _merged(spans: Iterable[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    # Overlapping findings (two detectors on one phrase) become one mark; spans past the
    # end of the text (a detector's bug) are cut to it.
    merged: list[tuple[int, int]] = []
    for start, end in sorted((start, min(end, length)) for start, end in spans if start < length):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _json_chars(text: str) -> str:
    """`text` as it reads between a JSON string's quotes, HTML-escaped."""
    return escape(json.dumps(text, ensure_ascii=False)[1:-1])


def marked_string(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """A JSON string literal, escaped, with each span of `text` in <mark>. Each piece is
    JSON-encoded on its own, so the offsets stay those of the raw text."""
    parts, cursor = [], 0
    for start, end in _merged(spans, len(text)):
        parts.append(_json_chars(text[cursor:start]))
        parts.append(f"<mark>{_json_chars(text[start:end])}</mark>")
        cursor = end
    parts.append(_json_chars(text[cursor:]))
    return "&quot;" + "".join(parts) + "&quot;"


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _render(value: Any, path: str, spans: Spans, level: int) -> str:
    if isinstance(value, str):
        return marked_string(value, spans.get(path, ()))
    pad, closing = INDENT * (level + 1), INDENT * level
    if isinstance(value, dict):
        if not value:
            return "{}"
        # The scanner gives every long key of a dict the same path (`<dict>.<key>`): a span
        # there is marked in each key long enough to hold it.
        key_spans = spans.get(_child(path, "<key>"), ())
        items = []
        for key, child in value.items():
            key = str(key)
            fitting = [(s, e) for s, e in key_spans if e <= len(key)] if len(key) >= MIN_TEXT_LENGTH else []
            rendered = _render(child, _child(path, key), spans, level + 1)
            items.append(f"{pad}{marked_string(key, fitting)}: {rendered}")
        return "{\n" + ",\n".join(items) + f"\n{closing}}}"
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [f"{pad}{_render(child, f'{path}[{i}]', spans, level + 1)}" for i, child in enumerate(value)]
        return "[\n" + ",\n".join(items) + f"\n{closing}]"
    return escape(json.dumps(value))


def json_with_marks(value: Any, spans: Spans) -> SafeString:
    """`value` as indented JSON (HTML-escaped), the spans' text in <mark>. Paths start at
    the value's own keys: `{"kind": ..., "payload": {"prompt": ...}}` holds `payload.prompt`."""
    return mark_safe(_render(value, "", spans, 0))  # noqa: S308 (every text was escaped above)


def matched_text(value: Any, span: Any) -> str | None:
    """The text a span covers in `value` (paths as in `json_with_marks`), or None when the
    span is missing or does not point at a string there."""
    found = spans_by_field([span])
    if not found or not isinstance(value, dict):
        return None
    ((field, ((start, end),)),) = found.items()
    for key, child in value.items():
        for path, text in strings_of(child, str(key)):
            if path == field and end <= len(text):
                return text[start:end]
    return None
