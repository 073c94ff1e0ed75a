from __future__ import annotations

# A real web server (gunicorn + uvicorn) and real Celery workers for the event stream tests.
from tests.config.test_gunicorn import start_server  # noqa: F401
from tests.workers.conftest import start_worker  # noqa: F401
