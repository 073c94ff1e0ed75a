"""A bound on a worker's warm shutdown.

Celery's warm shutdown (SIGTERM to the worker's main process) waits for the tasks in flight
however long they take, and a supervisor then kills the worker, leaving its runs `running`
until their lease lapses. Here, in the main process, SIGTERM starts a clock instead:

1. runs in flight have WORKER_SHUTDOWN_GRACE_SECONDS to finish (the process exits as soon as
   they do);
2. then the runs still held by this worker are handed back (apps.runs.services.run_hand_back:
   re-queued at once for another worker, this attempt fenced off) and the worker goes into
   Celery's cold shutdown, which terminates a prefork pool's children (threads pools: each run
   stops at its next check, when its heartbeat finds it handed back);
3. if the process still lives WORKER_SHUTDOWN_FORCE_SECONDS later, it exits by force.

A cold shutdown asked for directly (SIGQUIT, a second Ctrl-C) hands the runs back at once. A
GPU worker retiring itself (workers.gpu) lets its runs finish, unbounded.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from celery.signals import worker_ready, worker_shutting_down
from django.conf import settings

from workers import gpu as gpu_pool

logger = logging.getLogger(__name__)

EX_FORCED = 70  # EX_SOFTWARE

_started = threading.Event()
_forks = {"pool": False}  # whether tasks run in pool children (prefork), set when the worker is ready


@worker_ready.connect
def _remember_pool(sender: Any = None, **_: Any) -> None:
    _forks["pool"] = "prefork" in type(getattr(sender, "pool", None)).__module__


@worker_shutting_down.connect
def _bound_shutdown(sender: Any = None, how: str = "Warm", **_: Any) -> None:
    # in the main process's signal handler: only start the clock here
    if _started.is_set() or gpu_pool.is_recycling():
        return
    _started.set()
    threading.Thread(
        target=_shutdown_clock, args=(str(sender), how == "Cold"), name="shutdown-clock", daemon=True
    ).start()


def _hand_back(hostname: str) -> None:
    from django.db import connection

    from apps.runs.services import run_hand_back

    try:
        handed = run_hand_back(hostname=hostname)
        if handed:
            logger.warning("worker shutdown: handed %d run(s) in flight back to their queues", handed)
    except Exception:  # the reconciler re-queues them once their lease lapses
        logger.exception("worker shutdown: could not hand runs back")
    finally:
        connection.close()


def _shutdown_clock(hostname: str, cold: bool) -> None:
    if not cold:
        time.sleep(settings.WORKER_SHUTDOWN_GRACE_SECONDS)
        logger.warning(
            "worker shutdown: runs still in flight after %.0f s; handing them back",
            settings.WORKER_SHUTDOWN_GRACE_SECONDS,
        )
    _hand_back(hostname)
    if not cold and _forks["pool"]:
        os.kill(os.getpid(), signal.SIGQUIT)  # Celery's cold shutdown: terminates the pool's children
    time.sleep(settings.WORKER_SHUTDOWN_FORCE_SECONDS)
    logger.error(
        "worker shutdown: still running %.0f s after the runs were handed back; exiting",
        settings.WORKER_SHUTDOWN_FORCE_SECONDS,
    )
    logging.shutdown()
    os._exit(EX_FORCED)
