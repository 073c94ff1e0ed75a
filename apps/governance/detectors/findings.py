"""The one result type every detector returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The trace flags of the governance design (DESIGN.md, "Flag").
FLAGS = ("jailbreak", "anomaly", "high_risk", "unsafe", "malicious", "unverified")


@dataclass(frozen=True)
class Finding:
    """One thing a detector saw.

    ``span`` is ``(start, end)`` in the text or source the detector was given (the original, before any
    normalisation), so a reviewer can highlight it; ``None`` when the finding is about the whole input
    (a metric, a syntax error).
    """

    flag: str
    severity: int
    risk: float
    reason: str
    detector: str
    span: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.flag not in FLAGS:
            raise ValueError(f"unknown flag {self.flag!r}")
        if not 1 <= self.severity <= 10:
            raise ValueError(f"severity {self.severity} is outside 1..10")
        if not 0.0 <= self.risk <= 1.0:
            raise ValueError(f"risk {self.risk} is outside 0..1")

    def as_json(self) -> dict[str, Any]:
        return {
            "flag": self.flag,
            "severity": self.severity,
            "risk": round(float(self.risk), 4),
            "reason": self.reason,
            "detector": self.detector,
            "span": list(self.span) if self.span is not None else None,
        }
