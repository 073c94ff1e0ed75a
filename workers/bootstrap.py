"""Per-process worker setup: GPU pinning, what the worker can run (its capabilities),
a heartbeat row carrying them for readiness and submission checks, and a reconcile
pass at start so runs orphaned by a dead worker are picked up at once.

GPU workers: one per device, `GPU_INDEX=<i> celery -A config worker -Q gpu --pool solo`.
CUDA_VISIBLE_DEVICES is pinned here, before any task imports CuPy or torch, and
the solo pool keeps CUDA in the process that initialised it (no fork after). The
CUDA probe runs in a child process, so a prefork CPU worker never initialises CUDA,
and only a worker that serves the `gpu` queue counts GPUs at all.
"""

from __future__ import annotations

import functools
import gc
import importlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from celery.signals import (
    celeryd_after_setup,
    celeryd_init,
    task_postrun,
    task_prerun,
    worker_ready,
    worker_shutdown,
)
from django.db import connections

from apps.core.queues import EXECUTE_RUN_TASK, EXECUTE_RUNS_TASK, Queue
from workers import gpu as gpu_pool  # runs in flight, device figures, recycling limits
from workers import shutdown  # noqa: F401  (the bound on a warm shutdown)

logger = logging.getLogger(__name__)

_stop = threading.Event()

WARM_UP_TIMEOUT_SECONDS = 600
"""Bound on the kernels' compile at worker start (about 45 s on two cores)."""


RUN_TASKS = (EXECUTE_RUN_TASK, EXECUTE_RUNS_TASK)
RECENTLY_USED_SECONDS = 1.0
"""A connection that served a task this recently is not pinged before a run task (whose claim
reconnects and retries if the connection broke in between)."""

_last_task_end = -RECENTLY_USED_SECONDS


@task_prerun.connect
def _check_database_connections(sender: Any = None, **_: Any) -> None:
    """Before each task, what Django does before each request: a connection older than
    CONN_MAX_AGE, or one that failed, is dropped, and the next one is health-checked
    (CONN_HEALTH_CHECKS) before use, so a database restart costs one task no connection.
    A run task right after another skips the ping (a round trip each): a connection that broke
    in between fails the claim, which reconnects and tries again (workers.runs)."""
    skip_ping = (
        getattr(sender, "name", None) in RUN_TASKS
        and time.monotonic() - _last_task_end < RECENTLY_USED_SECONDS
    )
    for conn in connections.all(initialized_only=True):
        conn.close_if_unusable_or_obsolete()
        if skip_ping and conn.connection is not None:
            conn.health_check_done = True


@task_postrun.connect
def _note_task_end(**_: Any) -> None:
    global _last_task_end
    _last_task_end = time.monotonic()


CUDA_PROBE_TIMEOUT_SECONDS = 60
# The queues this worker serves, set before the pool forks so its children know them too.
WORKER_QUEUES_ENV = "LIMITGRAPH_WORKER_QUEUES"


@celeryd_init.connect
def _pin_gpu(options: dict[str, Any] | None = None, **_: Any) -> None:
    gpu_index = os.environ.get("GPU_INDEX")
    if gpu_index is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_index
        logger.info("worker pinned to GPU %s", gpu_index)
    queues = (options or {}).get("queues") or []
    if isinstance(queues, str):
        queues = queues.split(",")
    os.environ[WORKER_QUEUES_ENV] = ",".join(sorted(q.strip() for q in queues if q.strip()))


def _count_cuda_devices() -> int:
    """GPUs CuPy (or else torch) can use, counted in a child process (this one never touches CUDA)."""
    try:
        # NVML answers in milliseconds and touches no CUDA context: a host without an NVIDIA
        # driver or card needs no child process importing torch (seconds) to learn it
        gpu_pool.discover_gpus()
    except gpu_pool.NoGpu:
        return 0
    probe = (
        "try:\n    import cupy; print(cupy.cuda.runtime.getDeviceCount())\n"
        "except ImportError:\n    import torch; print(torch.cuda.device_count())"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            timeout=CUDA_PROBE_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
        )
        return int(done.stdout.strip() or 0) if done.returncode == 0 else 0
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0


MODEL_QUEUES = {Queue.INFERENCE.value, Queue.GPU.value}


def _serves_models(queues: list[str]) -> bool:
    return any(q in MODEL_QUEUES or q.startswith(f"{Queue.GPU.value}.") for q in queues)


@functools.cache
def worker_capabilities() -> dict[str, Any]:
    """What this worker can run: {"queues", "backends", "gpus", "models"}; probed once per process.

    "models": the registered inference models whose files this host has (/api/v1/models and
    the device policy read them from the heartbeat), for workers on model queues."""
    queues = [q for q in os.environ.get(WORKER_QUEUES_ENV, "").split(",") if q]
    backends = ["numpy"]
    has_torch = importlib.util.find_spec("torch") is not None
    if has_torch:
        backends.append("torch")
    gpus = 0
    has_cupy = importlib.util.find_spec("cupy") is not None
    if Queue.GPU.value in queues and (has_cupy or has_torch):
        gpus = _count_cuda_devices()
        if gpus and has_cupy:
            backends.append("cupy")
    models: list[str] = []
    if _serves_models(queues):
        from workers.inference import servable_models

        models = servable_models()
    return {"queues": queues, "backends": backends, "gpus": gpus, "models": models}


GRAPH_RUN_MODULES = ("kernels.fgw", "kernels.warmup", "ot.lp")
"""What a graph run imports, loaded in the pool's parent so that each child inherits it
through fork: imported by the first run instead, it took 2-4 s of that run (POT loads
torch). Importing compiles nothing; each child loads the kernels from numba's disk
cache at their first call, in a tenth of a second."""


EVERY_RUN_MODULES = ("apps.governance.detectors",)
"""What every run's output checks import (the text rules): 0.1 s of a process's first run
otherwise."""


@celeryd_after_setup.connect
def _preload_graph_modules(instance: Any = None, **_: Any) -> None:
    try:
        queues = set(instance.app.amqp.queues.consume_from or ())
    except AttributeError:
        queues = set()
    modules = EVERY_RUN_MODULES + (GRAPH_RUN_MODULES if {Queue.CPU.value, Queue.GPU.value} & queues else ())
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            logger.warning("could not preload %s", name, exc_info=True)
    # What is loaded now lives as long as the process: out of the collector's sight, the
    # gc.collect() Celery runs before forking each replacement child skips it (about 0.2 s of
    # the parent's time a fork otherwise), and no child's collection writes to those shared pages.
    gc.freeze()


def _queues_of(consumer: Any) -> list[str]:
    try:
        return [queue.name for queue in consumer.task_consumer.queues]
    except AttributeError:
        return []


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    from django.conf import settings
    from django.db import connection

    from apps.core.services import worker_heartbeat_record

    hostname = sender.hostname
    queues = _queues_of(sender)
    os.environ[WORKER_QUEUES_ENV] = ",".join(sorted(queues))
    worker_capabilities.cache_clear()
    capabilities = {key: value for key, value in worker_capabilities().items() if key != "queues"}
    sandbox = None
    if Queue.SANDBOX.value in queues:
        # Checked here, once, not in worker_capabilities(): pool children call that for
        # their first graph run, which should not pay for a sandbox probe.
        from workers.sandbox import sandbox_health

        sandbox = capabilities["sandbox"] = sandbox_health()
    logger.info("worker capabilities: %s", json.dumps(capabilities))
    if sandbox is not None and not sandbox["available"]:
        # The sandbox runner refuses to start: its queue's runs wait for a worker that can
        # isolate them (and submissions are refused while no live worker can).
        logger.error("not serving the sandbox queue: %s", sandbox["reason"])
        sender.cancel_task_queue(Queue.SANDBOX.value)
    elif sandbox is not None and sandbox["mode"] != "bwrap":
        logger.warning("the sandbox queue runs WITHOUT isolation (SANDBOX_ALLOW_UNSANDBOXED is set)")
    # tasks run in this process (so its counter sees them) unless the pool forks children
    in_process = "prefork" not in type(getattr(sender, "pool", None)).__module__
    gpu_pool.set_runs_in_process(in_process)

    def beat() -> None:
        try:
            while True:
                try:
                    worker_heartbeat_record(
                        hostname=hostname,
                        queues=queues,
                        pid=os.getpid(),
                        capabilities=capabilities,
                        stats=gpu_pool.worker_stats(
                            gpus=bool(capabilities["gpus"]), counts_in_process=in_process
                        ),
                    )
                except Exception:
                    logger.warning("worker heartbeat failed", exc_info=True)
                if _stop.wait(settings.WORKER_HEARTBEAT_SECONDS):
                    return
        finally:
            connection.close()

    threading.Thread(target=beat, name="worker-heartbeat", daemon=True).start()

    from workers.control import reconcile_runs_task

    if in_process and _serves_models(queues):
        # (never beside a prefork pool, which may fork while an import holds its lock)
        # transformers and sentence-transformers take seconds to import: now, not in the first run
        threading.Thread(target=_preload_inference, name="inference-preload", daemon=True).start()

    if {Queue.CPU.value, Queue.GPU.value} & set(queues):
        # the FGW kernels' compiled code into numba's disk cache now, beside the start-up
        # work, not inside the first graph run a user waits for
        threading.Thread(target=_warm_up_kernels, name="kernel-warm-up", daemon=True).start()

    try:
        reconcile_runs_task.apply_async(queue=Queue.CONTROL.value)
    except Exception:
        logger.warning("could not schedule the start-up reconcile", exc_info=True)


INFERENCE_MODULES = ("kernels.inference", "transformers", "sentence_transformers")


def _preload_inference() -> None:
    for name in INFERENCE_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            logger.warning("could not preload %s", name, exc_info=True)


def _warm_up_kernels() -> None:
    """Fill numba's disk cache for the FGW kernels in a separate process and wait for
    it (in a side thread). Not compiled in this process: a pool child forked while a
    compile held numba's lock would inherit the lock held, and hang on its first run."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "kernels.warmup"],
            cwd=Path(__file__).resolve().parents[1],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=WARM_UP_TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired):
        logger.warning("kernel warm-up failed", exc_info=True)
        return
    if done.returncode != 0:  # only means the first graph run compiles instead
        logger.warning("kernel warm-up failed: %s", done.stderr.decode(errors="replace")[-2000:])


@worker_shutdown.connect
def _on_worker_shutdown(sender: Any = None, **_: Any) -> None:
    from apps.core.services import worker_heartbeat_remove

    _stop.set()
    hostname = getattr(sender, "hostname", None)
    if hostname:
        try:
            worker_heartbeat_remove(hostname=hostname)
        except Exception:
            logger.warning("could not remove worker heartbeat", exc_info=True)
