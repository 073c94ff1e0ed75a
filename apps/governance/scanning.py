"""Findings on run inputs, outputs and metrics, through one interface.

The detectors are `scan_text`, `scan_texts` (the full scan, batched), `scan_code` and
`check_metric` from the modules the settings name (GOVERNANCE_TEXT_SCANNER,
GOVERNANCE_TEXT_BATCH_SCANNER, GOVERNANCE_CODE_SCANNER, GOVERNANCE_METRIC_CHECKER; by default
apps.governance.detectors): better detectors drop in without touching this code. A finding
is anything with `flag`, `severity`, `risk`, `reason`, `detector` and `span`.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

# Payload fields that hold code for the Python runner: scanned as code, not as text.
CODE_FIELDS = {"python": ("code",)}
# Strings shorter than this say nothing a detector could use (ids, enum values).
MIN_TEXT_LENGTH = 8


@cache
def _detector(setting: str) -> Any:
    return import_string(getattr(settings, setting))


def reset_detectors() -> None:
    """Forget the loaded detectors (after the settings that name them change)."""
    _detector.cache_clear()


def strings_of(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, text) of every string in a JSON value, keys included, depth-first."""
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                if isinstance(key, str) and len(key) >= MIN_TEXT_LENGTH:
                    yield f"{where}.<key>", key
                stack.append((f"{where}.{key}", child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{index}]", child) for index, child in reversed(list(enumerate(item))))


def finding_json(finding: Any, *, field: str, source: str) -> dict[str, Any]:
    span = getattr(finding, "span", None)
    return {
        "flag": finding.flag,
        "severity": int(finding.severity),
        "risk": float(finding.risk),
        "reason": finding.reason,
        "detector": finding.detector,
        "source": source,
        "span": None if span is None else {"field": field, "start": int(span[0]), "end": int(span[1])},
    }


def _split_code(value: Any, kind: str) -> tuple[Any, list[tuple[str, str]]]:
    """The value without its code fields, and (field name, source) of each code field."""
    code_fields = CODE_FIELDS.get(kind, ())
    if not (isinstance(value, dict) and code_fields):
        return value, []
    code = [(name, value[name]) for name in code_fields if isinstance(value.get(name), str)]
    return {key: item for key, item in value.items() if key not in code_fields}, code


def texts_of(value: Any, *, path: str, kind: str = "") -> list[tuple[str, str]]:
    """(field, text) of every string in a payload or result that the text scanner reads."""
    value, _ = _split_code(value, kind)
    return [(field, text) for field, text in strings_of(value, path) if len(text) >= MIN_TEXT_LENGTH]


def scan_value(
    value: Any, *, path: str, source: str, kind: str = "", fast: bool = True
) -> list[dict[str, Any]]:
    """Findings on every text in a payload or result (and on its code, for code-running kinds).

    ``fast``: the rules alone, text by text (inline in a web request); otherwise the full scan,
    rules and model, in one batched call (on a worker: it loads the embedding model).
    """
    findings = []
    _, code = _split_code(value, kind)
    if code:
        scan_code = _detector("GOVERNANCE_CODE_SCANNER")
        for name, source_code in code:
            field = f"{path}.{name}"
            findings += [finding_json(f, field=field, source=source) for f in scan_code(source_code)]
    texts = texts_of(value, path=path, kind=kind)
    if fast:
        scan_text = _detector("GOVERNANCE_TEXT_SCANNER")
        found = [scan_text(text, fast=True) for _, text in texts]
    else:
        found = _detector("GOVERNANCE_TEXT_BATCH_SCANNER")([text for _, text in texts], fast=False)
    for (field, _), text_findings in zip(texts, found, strict=True):
        findings += [finding_json(f, field=field, source=source) for f in text_findings]
    return findings


def check_metric(kind: str, name: str, value: float, history: list[float]) -> list[dict[str, Any]]:
    checker = _detector("GOVERNANCE_METRIC_CHECKER")
    return [
        finding_json(f, field=f"metrics.{name}", source="metric") for f in checker(kind, name, value, history)
    ]
