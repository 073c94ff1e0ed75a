from __future__ import annotations

# Real Celery worker processes (the browser tests' runs complete on one) and a real
# gunicorn + uvicorn server (the dashboard's event stream needs ASGI).
from tests.config.test_gunicorn import start_server  # noqa: F401
from tests.workers.conftest import start_worker  # noqa: F401
