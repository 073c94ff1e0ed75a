from __future__ import annotations

import pytest

from apps.governance.scanning import reset_detectors
from apps.sessions.services import session_create


@pytest.fixture(autouse=True)
def test_scanners(settings):
    settings.GOVERNANCE_TEXT_SCANNER = "tests.apps.governance.scanners.scan_text"
    settings.GOVERNANCE_TEXT_BATCH_SCANNER = "tests.apps.governance.scanners.scan_texts"
    settings.GOVERNANCE_CODE_SCANNER = "tests.apps.governance.scanners.scan_code"
    settings.GOVERNANCE_METRIC_CHECKER = "tests.apps.governance.scanners.check_metric"
    reset_detectors()
    yield
    reset_detectors()


@pytest.fixture
def strict_session(user):
    return session_create(owner=user, name="strict", policy="strict")
