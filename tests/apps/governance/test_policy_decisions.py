"""What each preset makes of findings: the documented values, decided by one pure function."""

from __future__ import annotations

import pytest

from apps.governance.models import ReviewState
from apps.governance.policy import decide
from apps.policies.models import Policy
from apps.policies.services import policy_resolve

pytestmark = pytest.mark.django_db


def finding(flag: str, severity: int) -> dict:
    return {
        "flag": flag,
        "severity": severity,
        "risk": severity / 10,
        "reason": "r",
        "detector": "d",
        "source": "input",
    }


def version(name: str):
    return policy_resolve(name).active_version


@pytest.mark.parametrize(
    "preset,flag,severity,block,review",
    [
        # strict: quarantine from 5, block from 8, human review of every flagged trace
        ("strict", "unverified", 3, False, ReviewState.PENDING),
        ("strict", "unverified", 5, False, ReviewState.QUARANTINED),
        ("strict", "high_risk", 8, True, ReviewState.QUARANTINED),
        (
            "strict",
            "jailbreak",
            2,
            True,
            ReviewState.QUARANTINED,
        ),  # a blocked flag type, whatever its severity
        # default: quarantine from 7, block from 9, malicious always blocked
        ("default", "high_risk", 6, False, None),
        ("default", "high_risk", 7, False, ReviewState.QUARANTINED),
        ("default", "high_risk", 9, True, ReviewState.QUARANTINED),
        ("default", "malicious", 1, True, ReviewState.QUARANTINED),
        # permissive: never block; quarantine only at 10
        ("permissive", "malicious", 9, False, None),
        ("permissive", "jailbreak", 10, False, ReviewState.QUARANTINED),
    ],
)
def test_presets_decide_as_documented(preset, flag, severity, block, review):
    decision = decide([finding(flag, severity)], version(preset), inputs=True)
    assert (decision.block, decision.review) == (block, review)
    assert decision.max_severity == severity


def test_outputs_are_never_blocked_only_quarantined():
    decision = decide([finding("high_risk", 9)], version("strict"), inputs=False)
    assert not decision.block and decision.review == ReviewState.QUARANTINED


def test_anomalies_use_their_own_threshold():
    strict = version("strict")  # max_anomaly_severity 6
    assert decide([finding("anomaly", 6)], strict, inputs=False).review == ReviewState.PENDING
    assert decide([finding("anomaly", 7)], strict, inputs=False).review == ReviewState.QUARANTINED


def test_no_findings_no_decision():
    decision = decide([], version("strict"), inputs=True)
    assert not decision.block and decision.review is None


def test_the_presets_exist_with_their_documented_values():
    strict = Policy.objects.get(name="strict").active_version
    assert (strict.quarantine_severity, strict.block_severity, strict.require_human_review) == (5, 8, True)
    permissive = Policy.objects.get(name="permissive").active_version
    assert (permissive.quarantine_severity, permissive.block_severity) == (10, 11)
