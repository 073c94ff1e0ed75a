"""What a policy version makes of findings: block, quarantine, wait for a person, or pass.
Pure: the same rules for run inputs, outputs, manual flags and /governance/scan."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from apps.governance.models import ReviewState
from apps.policies.models import PolicyVersion


@dataclass(frozen=True)
class PolicyDecision:
    block: bool  # inputs only: the run is not executed
    review: ReviewState | None  # quarantined, pending (human review), or None
    reason: str
    max_severity: int

    def as_json(self) -> dict[str, Any]:
        return {
            "block": self.block,
            "review": self.review.value if self.review else None,
            "reason": self.reason,
            "max_severity": self.max_severity,
        }


def decide(findings: Iterable[dict[str, Any]], version: PolicyVersion, *, inputs: bool) -> PolicyDecision:
    findings = list(findings)
    if not findings:
        return PolicyDecision(False, None, "", 0)
    top = max(findings, key=lambda f: f["severity"])
    reasons = []
    blocked_types = sorted({f["flag"] for f in findings if f["flag"] in version.blocked_flags})
    over_block = [f for f in findings if f["severity"] >= version.block_severity]
    block = inputs and bool(blocked_types or over_block)
    if block:
        if blocked_types:
            reasons.append(f"blocked flag type {', '.join(blocked_types)}")
        if over_block:
            reasons.append(f"severity {top['severity']} at or over {version.block_severity} (block_severity)")
    anomalies = [
        f for f in findings if f["flag"] == "anomaly" and f["severity"] > version.max_anomaly_severity
    ]
    over_quarantine = [
        f for f in findings if f["flag"] != "anomaly" and f["severity"] >= version.quarantine_severity
    ]
    quarantine = block or (version.auto_quarantine and bool(over_quarantine or anomalies))
    if quarantine and not block:
        if over_quarantine:
            reasons.append(
                f"severity {top['severity']} at or over {version.quarantine_severity} (quarantine_severity)"
            )
        if anomalies:
            reasons.append(f"anomaly over {version.max_anomaly_severity} (max_anomaly_severity)")
    review = ReviewState.QUARANTINED if quarantine else None
    if review is None and version.require_human_review:
        review = ReviewState.PENDING
        reasons.append("the policy requires a person to review every flagged trace")
    reason = f"{top['flag']}: {top['reason']}" + (f" ({'; '.join(reasons)})" if reasons else "")
    return PolicyDecision(block, review, reason, int(top["severity"]))
