"""Test-wide setup: real PostgreSQL and Redis unless the environment says otherwise.

Loaded as a plugin (`-p tests.environment` in pyproject) before pytest-django imports settings,
so these defaults reach settings and every worker process the tests start.
"""

from __future__ import annotations

import os

TEST_ENV_DEFAULTS = {
    "SECRET_KEY": "test-secret-key-not-for-production-0123456789abcdefghijklmnop",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/limitgraph",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
    # Short timings so the lifecycle tests see heartbeats, leases and reconciles in seconds.
    "RUN_HEARTBEAT_SECONDS": "0.5",
    "RUN_LEASE_SECONDS": "3",
    "WORKER_HEARTBEAT_SECONDS": "1",
    "THROTTLE_USER": "100000/min",
    "THROTTLE_ANON": "100000/min",
    "LOGIN_FAILURES_PER_ADDRESS": "100000/min",
    "LOGIN_FAILURES_PER_USERNAME": "100000/min",
    "LOG_LEVEL": "WARNING",
    # Anomaly tests build a kind's history run by run: read it fresh on every completion.
    "GOVERNANCE_METRIC_HISTORY_SECONDS": "0",
}
for name, value in TEST_ENV_DEFAULTS.items():
    os.environ.setdefault(name, value)
