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

import gc
import os
import shutil
import sys
import tempfile
from typing import Any

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
worker_class = "config.web_server.WebWorker"
accesslog = "-"
# How often a web worker's request threads hand the GIL on (Python's default: 5 ms). A thread
# whose database or Redis reply has arrived waits up to this long for the GIL while another
# request computes, once per round trip, and a submission makes several.
SWITCH_INTERVAL_SECONDS = float(os.environ.get("WEB_SWITCH_INTERVAL_SECONDS", "0.0005"))

DEFAULT_METRICS_DIR = os.path.join(tempfile.gettempdir(), "limitgraph-prometheus")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", DEFAULT_METRICS_DIR)


def on_starting(server: Any) -> None:
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker: Any) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    _freeze_what_is_loaded()


def _freeze_what_is_loaded() -> None:
    """What the app has loaded lives as long as the worker: out of the collector's sight, the
    occasional full collection stops walking all of Django's and the project's objects
    (docs/benchmarks.md, "a frozen heap"). The URLconf's views would otherwise be imported by
    the first request, after this."""
    from django.apps import apps

    if apps.ready:
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018 (imports every view)
    gc.collect()
    gc.freeze()
