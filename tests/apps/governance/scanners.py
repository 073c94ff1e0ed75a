"""Deterministic detectors for the governance tests (GOVERNANCE_*_SCANNER point here), so
policy thresholds are tested on exact severities; tests of the shipped detectors live in
tests/apps/governance/detectors/.

A text finding is written into the text itself: `[[jailbreak:9]]` is a jailbreak finding of
severity 9 whose span is the marker; `{{jailbreak:9}}` is one that only the full scan (the
model's) finds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

MARKER = re.compile(r"\[\[(\w+):(\d+)\]\]")
MODEL_MARKER = re.compile(r"\{\{(\w+):(\d+)\}\}")


@dataclass(frozen=True)
class Finding:
    flag: str
    severity: int
    risk: float
    reason: str
    detector: str
    span: tuple[int, int] | None


def scan_text(text: str, *, fast: bool = False) -> list[Finding]:
    return [
        Finding(m[1], int(m[2]), int(m[2]) / 10, f"marker {m[0]}", "test-markers", (m.start(), m.end()))
        for m in MARKER.finditer(text)
    ]


def scan_texts(texts: Sequence[str], *, fast: bool = False) -> list[list[Finding]]:
    results = [scan_text(text, fast=fast) for text in texts]
    if not fast:
        for text, found in zip(texts, results, strict=True):
            found += [
                Finding(m[1], int(m[2]), int(m[2]) / 10, f"model {m[0]}", "test-model", (m.start(), m.end()))
                for m in MODEL_MARKER.finditer(text)
            ]
    return results


def scan_code(source: str) -> list[Finding]:
    index = source.find("os.system")
    if index < 0:
        return []
    return [Finding("unsafe", 9, 0.9, "spawns a shell", "test-code", (index, index + len("os.system")))]


def check_metric(kind: str, name: str, value: float, history: Sequence[float]) -> list[Finding]:
    if name == "duration_seconds" and value > 1000:
        return [Finding("anomaly", 8, 0.8, "took too long", "test-metric", None)]
    return []
