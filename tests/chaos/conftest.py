from __future__ import annotations

import os

import pytest

from tests.config.test_gunicorn import start_server  # noqa: F401
from tests.workers.conftest import start_worker  # noqa: F401

# CHAOS_LONG=1 runs the long versions (more runs, more faults); CI runs the short ones.
LONG = os.environ.get("CHAOS_LONG") == "1"


@pytest.fixture
def long_chaos() -> bool:
    return LONG


@pytest.fixture
def beat(tmp_path):
    """Celery beat as deployed, with the reconciler due every RECONCILE_INTERVAL_SECONDS."""
    import subprocess
    import sys

    from tests.workers.conftest import ROOT, process_env

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--schedule",
            str(tmp_path / "beat-schedule"),
        ],
        cwd=ROOT,
        env=process_env(RECONCILE_INTERVAL_SECONDS="2"),
        stdout=open(tmp_path / "beat.log", "wb"),  # noqa: SIM115 (closed with the process)
        stderr=subprocess.STDOUT,
    )
    yield process
    process.terminate()
    process.wait(timeout=15)
