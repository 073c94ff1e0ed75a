"""Governance detectors: pure functions from text, code or a metric to findings.

No Django, no I/O at call time beyond loading the shipped classifier and embedding model once (the
full text scan only). ``scan_text(text, fast=True)``, ``scan_code`` and ``check_metric`` never import
numpy, torch or transformers.
"""

from __future__ import annotations

from apps.governance.detectors.code import scan_code
from apps.governance.detectors.findings import FLAGS, Finding
from apps.governance.detectors.metrics import check_metric
from apps.governance.detectors.text import scan_text, scan_texts

__all__ = ["FLAGS", "Finding", "check_metric", "scan_code", "scan_text", "scan_texts"]
