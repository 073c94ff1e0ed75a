"""gunicorn settings: `gunicorn -c config/gunicorn.py config.asgi`.

Uvicorn workers (config.web_server.WebWorker) serve the ASGI application: a
connection is a coroutine, so slow or stalled clients hold sockets, not workers.
config.wsgi still works under gunicorn's own sync workers
(`gunicorn -c config/gunicorn.py -k sync config.wsgi`), without those guards.

HTTP metrics are counted per process; prometheus_client's multiprocess mode
sums them across gunicorn's workers through files in PROMETHEUS_MULTIPROC_DIR,
which must exist and start empty, and must forget a worker when it exits.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
worker_class = "config.web_server.WebWorker"
accesslog = "-"

DEFAULT_METRICS_DIR = os.path.join(tempfile.gettempdir(), "limitgraph-prometheus")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", DEFAULT_METRICS_DIR)


def on_starting(server: Any) -> None:
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
