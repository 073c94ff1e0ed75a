"""GPU worker pools: `python -m workers.gpu` starts one Celery worker per GPU and keeps them up.

    python -m workers.gpu [--gpus 0,1] [--pool threads|solo] [--concurrency 16]
                          [--max-tasks 1000] [--max-memory-fraction 0.9]

GPUs are found with NVML (nvidia-ml-py). Each worker sees only its card
(CUDA_VISIBLE_DEVICES, in PCI bus order so CUDA's index is NVML's), consumes `gpu` (any card)
and `gpu.<index>` (runs pinned to that card), and runs a pool that never forks after CUDA is
initialised: solo, or threads (concurrent inference runs then share forward passes). A worker
retires itself after --max-tasks runs or once its card's memory in use passes
--max-memory-fraction (warm shutdown: runs in flight finish, unstarted ones go back to the
broker), and the launcher starts a fresh one. With no GPU it says so and exits non-zero.

In a worker, this module also measures what the heartbeat reports (runs in flight, the card's
memory and utilisation) and applies the recycling limits (installed by workers.bootstrap).
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery.signals import task_postrun, task_prerun
from django.conf import settings

from apps.core.queues import EXECUTE_RUN_TASK, EXECUTE_RUNS_TASK

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
RECYCLE_AFTER_TASKS_ENV = "LIMITGRAPH_RECYCLE_AFTER_TASKS"
RECYCLE_ABOVE_MEMORY_ENV = "LIMITGRAPH_RECYCLE_ABOVE_MEMORY_FRACTION"
DEFAULT_CONCURRENCY = 16
DEFAULT_MAX_TASKS = 1000
DEFAULT_MAX_MEMORY_FRACTION = 0.9
RESTART_BACKOFF_MAX_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 60.0
EXIT_NO_GPU = 3


class NoGpu(RuntimeError):
    pass


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_total_bytes: int


# --- NVML ------------------------------------------------------------------------------


def _nvml() -> Any:
    try:
        import pynvml
    except ImportError as exc:
        raise NoGpu("nvidia-ml-py is not installed (pip install nvidia-ml-py)") from exc
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise NoGpu(f"NVML is not usable here ({exc}): no NVIDIA driver, or no GPU") from exc
    return pynvml


def discover_gpus() -> list[Gpu]:
    """The host's NVIDIA GPUs; NoGpu (with the reason) when there are none."""
    nvml = _nvml()
    try:
        count = nvml.nvmlDeviceGetCount()
        gpus = []
        for index in range(count):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = nvml.nvmlDeviceGetName(handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(
                Gpu(index, name.decode() if isinstance(name, bytes) else str(name), int(memory.total))
            )
    finally:
        nvml.nvmlShutdown()
    if not gpus:
        raise NoGpu("NVML found no GPU")
    return gpus


def gpu_stats(indices: Sequence[int]) -> list[dict[str, Any]]:
    """Memory used and total and utilisation (0..1) of the given cards; [] when NVML is unusable."""
    try:
        nvml = _nvml()
    except NoGpu:
        return []
    stats = []
    try:
        for index in indices:
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                utilisation = nvml.nvmlDeviceGetUtilizationRates(handle)
            except nvml.NVMLError:
                continue
            stats.append(
                {
                    "index": index,
                    "memory_used_bytes": int(memory.used),
                    "memory_total_bytes": int(memory.total),
                    "utilization": utilisation.gpu / 100.0,
                }
            )
    finally:
        nvml.nvmlShutdown()
    return stats


def pinned_gpu_indices() -> list[int]:
    """The physical (NVML) indices of the cards this process was pinned to."""
    pinned = os.environ.get("GPU_INDEX") or os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return [int(part) for part in pinned.split(",") if part.strip().isdigit()]


# --- in a worker: runs in flight, heartbeat figures, recycling -------------------------

_in_flight = 0
_tasks_done = 0
_counter_lock = threading.Lock()
_recycling = False
# Set at worker start: tasks run in this process (threads, solo) rather than in forked children.
_runs_in_process = False


def set_runs_in_process(value: bool) -> None:
    global _runs_in_process
    _runs_in_process = value


def _peak_memory_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _is_run(task: Any) -> bool:
    # runs only: control tasks (the reconciler) neither hold a GPU nor count towards recycling
    return getattr(task, "name", None) in (EXECUTE_RUN_TASK, EXECUTE_RUNS_TASK)


@task_prerun.connect
def _task_started(sender: Any = None, **_: Any) -> None:
    global _in_flight
    if not _is_run(sender):
        return
    with _counter_lock:
        _in_flight += 1


@task_postrun.connect
def _task_finished(sender: Any = None, **_: Any) -> None:
    global _in_flight, _tasks_done
    if not _is_run(sender):
        return
    with _counter_lock:
        _in_flight -= 1
        _tasks_done += 1
        done = _tasks_done
    _maybe_recycle(done)


def runs_in_flight() -> int:
    return _in_flight


def worker_stats(*, gpus: bool, counts_in_process: bool) -> dict[str, Any]:
    """What the heartbeat reports. Runs in flight only where tasks run in this process
    (solo and threads pools); a prefork parent would always say 0."""
    stats: dict[str, Any] = {"runs_in_flight": runs_in_flight() if counts_in_process else None}
    if gpus:
        stats["gpus"] = gpu_stats(pinned_gpu_indices())
    return stats


def _memory_fraction_in_use() -> float | None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        total = torch.cuda.get_device_properties(0).total_memory
        return torch.cuda.memory_reserved(0) / total if total else None
    cards = gpu_stats(pinned_gpu_indices())
    if not cards:
        return None
    return max(card["memory_used_bytes"] / max(card["memory_total_bytes"], 1) for card in cards)


def recycle_reason(tasks_done: int) -> str | None:
    """Why this worker should retire now, from the limits its launcher set; None to go on."""
    max_tasks = int(os.environ.get(RECYCLE_AFTER_TASKS_ENV) or 0)
    if max_tasks and tasks_done >= max_tasks:
        return f"{tasks_done} runs done (limit {max_tasks})"
    max_fraction = float(os.environ.get(RECYCLE_ABOVE_MEMORY_ENV) or 0)
    if max_fraction:
        fraction = _memory_fraction_in_use()
        if fraction is not None and fraction >= max_fraction:
            return f"GPU memory {fraction:.0%} in use (limit {max_fraction:.0%})"
    # Threads and solo pools have no children for Celery's --max-memory-per-child to replace:
    # the worker itself retires above the same limit, and its supervisor starts a fresh one.
    limit_kib = settings.CELERY_WORKER_MAX_MEMORY_PER_CHILD
    if _runs_in_process and limit_kib and (peak := _peak_memory_bytes()) > limit_kib * 1024:
        return f"peak memory {peak >> 20} MiB (limit {limit_kib >> 10} MiB, WORKER_MAX_MEMORY_PER_CHILD_MB)"
    return None


def is_recycling() -> bool:
    """Whether this worker is retiring itself (its runs then finish, however long they take)."""
    return _recycling


def _maybe_recycle(tasks_done: int) -> None:
    global _recycling
    if _recycling:
        return
    reason = recycle_reason(tasks_done)
    if reason is None:
        return
    _recycling = True
    logger.warning("worker recycling: %s; warm shutdown, its launcher starts a fresh one", reason)
    # warm shutdown: runs in flight finish, prefetched messages go back to the broker (acks late)
    os.kill(os.getpid(), signal.SIGTERM)


# --- the launcher ----------------------------------------------------------------------


def worker_command(
    gpu: int,
    *,
    pool: str = "threads",
    concurrency: int = DEFAULT_CONCURRENCY,
    max_tasks: int = DEFAULT_MAX_TASKS,
    max_memory_fraction: float = DEFAULT_MAX_MEMORY_FRACTION,
    loglevel: str = "INFO",
) -> tuple[list[str], dict[str, str]]:
    """The command and environment of the worker for card `gpu`."""
    if pool not in ("threads", "solo"):
        raise ValueError("a GPU worker's pool is threads or solo: it must not fork after CUDA starts")
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--queues",
        f"gpu,gpu.{gpu}",
        "--pool",
        pool,
        "--concurrency",
        str(1 if pool == "solo" else concurrency),
        "--hostname",
        f"gpu{gpu}@%h",
        "--loglevel",
        loglevel,
        "--task-events",
    ]
    env = {
        **os.environ,
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": str(gpu),
        "GPU_INDEX": str(gpu),
        RECYCLE_AFTER_TASKS_ENV: str(max_tasks),
        RECYCLE_ABOVE_MEMORY_ENV: str(max_memory_fraction),
    }
    return argv, env


class Supervisor:
    """Keeps one worker per card running: a worker that exits (recycled or crashed) is started
    again, after a growing pause if it keeps dying young; SIGTERM/SIGINT stop them all."""

    def __init__(self, commands: dict[int, tuple[list[str], dict[str, str]]]) -> None:
        self.commands = commands
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.failures: dict[int, int] = dict.fromkeys(commands, 0)
        self.started_at: dict[int, float] = {}
        self.stopping = threading.Event()

    def start(self, gpu: int) -> None:
        argv, env = self.commands[gpu]
        self.children[gpu] = subprocess.Popen(argv, env=env, cwd=ROOT)
        self.started_at[gpu] = time.monotonic()
        print(f"workers.gpu: GPU {gpu}: worker pid {self.children[gpu].pid}", flush=True)

    def stop(self, *_: Any) -> None:
        self.stopping.set()

    def run(self) -> int:
        for gpu in self.commands:
            self.start(gpu)
        restart_at: dict[int, float] = {}
        while not self.stopping.wait(1.0):
            now = time.monotonic()
            for gpu, child in list(self.children.items()):
                code = child.poll()
                if code is None or gpu in restart_at:
                    continue
                young = now - self.started_at[gpu] < 60
                self.failures[gpu] = self.failures[gpu] + 1 if young and code != 0 else 0
                delay = min(RESTART_BACKOFF_MAX_SECONDS, 2.0 ** self.failures[gpu] - 1)
                print(
                    f"workers.gpu: GPU {gpu}: worker exited ({code}); restarting in {delay:.0f}s", flush=True
                )
                restart_at[gpu] = now + delay
            for gpu, when in list(restart_at.items()):
                if now >= when:
                    del restart_at[gpu]
                    self.start(gpu)
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", help="comma-separated card indices (default: every card found)")
    parser.add_argument("--pool", choices=("threads", "solo"), default="threads")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--max-tasks", type=int, default=DEFAULT_MAX_TASKS)
    parser.add_argument("--max-memory-fraction", type=float, default=DEFAULT_MAX_MEMORY_FRACTION)
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)
    try:
        found = discover_gpus()
    except NoGpu as exc:
        print(
            f"workers.gpu: no GPU found: {exc}. Nothing to start; CPU workers serve inference "
            "(celery -A config worker -Q inference --pool threads).",
            file=sys.stderr,
        )
        return EXIT_NO_GPU
    indices = [gpu.index for gpu in found]
    if args.gpus:
        wanted = [int(part) for part in args.gpus.split(",") if part.strip()]
        missing = sorted(set(wanted) - set(indices))
        if missing:
            print(f"workers.gpu: no GPU {missing} here (found {indices})", file=sys.stderr)
            return EXIT_NO_GPU
        indices = wanted
    for gpu in found:
        if gpu.index in indices:
            print(
                f"workers.gpu: GPU {gpu.index}: {gpu.name}, {gpu.memory_total_bytes / 2**30:.1f} GiB",
                flush=True,
            )
    supervisor = Supervisor(
        {
            index: worker_command(
                index,
                pool=args.pool,
                concurrency=args.concurrency,
                max_tasks=args.max_tasks,
                max_memory_fraction=args.max_memory_fraction,
                loglevel=args.loglevel,
            )
            for index in indices
        }
    )
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
