"""The three presets (seed 000's names) and what each setting means.

Severities run 1-10. A threshold of 11 means "never" (no finding reaches it).
"""

from __future__ import annotations

from typing import Any

NEVER = 11
FLAG_TYPES = ("jailbreak", "anomaly", "high_risk", "unsafe", "malicious", "unverified")

PRESETS: dict[str, dict[str, Any]] = {
    # Minimal restrictions: nothing is blocked; only the gravest findings quarantine.
    "permissive": {
        "auto_quarantine": True,
        "quarantine_severity": 10,
        "block_severity": NEVER,
        "merge_max_severity": 9,
        "blocked_flags": [],
        "require_human_review": False,
        "max_anomaly_severity": 10,
        "scan_outputs": False,
        "scan_inputs_model": False,
    },
    # Balanced: severe inputs are blocked, serious findings quarantined.
    "default": {
        "auto_quarantine": True,
        "quarantine_severity": 7,
        "block_severity": 9,
        "merge_max_severity": 6,
        "blocked_flags": ["malicious"],
        "require_human_review": False,
        "max_anomaly_severity": 8,
        "scan_outputs": True,
        "scan_inputs_model": False,
    },
    # Maximum security: quarantine from 5, block from 8, every flagged trace waits for a person.
    "strict": {
        "auto_quarantine": True,
        "quarantine_severity": 5,
        "block_severity": 8,
        "merge_max_severity": 4,
        "blocked_flags": ["malicious", "jailbreak"],
        "require_human_review": True,
        "max_anomaly_severity": 6,
        "scan_outputs": True,
        "scan_inputs_model": False,
    },
}
PRESET_NAMES = tuple(PRESETS)
SETTING_NAMES = tuple(PRESETS["default"])
