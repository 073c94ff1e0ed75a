from __future__ import annotations

# Real Celery worker processes for the end-to-end tests (the browser test's run completes on one).
from tests.workers.conftest import start_worker  # noqa: F401
