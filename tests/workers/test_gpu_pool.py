"""The GPU pool launcher (`python -m workers.gpu`) and what GPU workers do to themselves:
per-card queues, recycling after N tasks, device figures. This machine has no GPU: the
launcher's no-GPU path runs for real; the per-card worker is checked by its command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from config.celery import app
from tests.workers.conftest import ROOT, wait_for_run
from workers import gpu


def test_without_a_gpu_the_launcher_says_so_and_exits_non_zero():
    done = subprocess.run(
        [sys.executable, "-m", "workers.gpu"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == gpu.EXIT_NO_GPU != 0
    assert "no GPU found" in done.stderr and "Nothing to start" in done.stderr
    assert "pid" not in done.stdout  # no worker was started


def test_each_card_gets_a_pinned_never_forking_worker_on_its_own_queue():
    argv, env = gpu.worker_command(3, pool="threads", concurrency=8, max_tasks=50, max_memory_fraction=0.8)
    assert argv[argv.index("--queues") + 1] == "gpu,gpu.3"
    assert argv[argv.index("--pool") + 1] == "threads" and argv[argv.index("--concurrency") + 1] == "8"
    assert argv[argv.index("--hostname") + 1] == "gpu3@%h"
    assert env["CUDA_VISIBLE_DEVICES"] == "3" and env["GPU_INDEX"] == "3"
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"  # CUDA's card 3 is NVML's card 3
    assert env[gpu.RECYCLE_AFTER_TASKS_ENV] == "50" and env[gpu.RECYCLE_ABOVE_MEMORY_ENV] == "0.8"
    solo, _ = gpu.worker_command(0, pool="solo")
    assert solo[solo.index("--concurrency") + 1] == "1"
    with pytest.raises(ValueError, match="must not fork"):
        gpu.worker_command(0, pool="prefork")


def test_per_card_queues_join_the_project_exchange_with_priorities():
    queue = app.amqp.queues["gpu.5"]
    declared = app.amqp.queues["gpu"]
    assert queue.exchange.name == declared.exchange.name == "limitgraph"
    assert queue.routing_key == "gpu.5"
    assert queue.queue_arguments == declared.queue_arguments


def test_recycling_limits(monkeypatch):
    monkeypatch.delenv(gpu.RECYCLE_AFTER_TASKS_ENV, raising=False)
    monkeypatch.delenv(gpu.RECYCLE_ABOVE_MEMORY_ENV, raising=False)
    assert gpu.recycle_reason(10_000) is None
    monkeypatch.setenv(gpu.RECYCLE_AFTER_TASKS_ENV, "3")
    assert gpu.recycle_reason(2) is None
    assert gpu.recycle_reason(3) == "3 runs done (limit 3)"


def test_device_figures_without_a_gpu_are_empty_and_in_flight_is_counted():
    assert gpu.gpu_stats([0]) == []
    assert gpu.worker_stats(gpus=True, counts_in_process=True) == {"runs_in_flight": 0, "gpus": []}
    # a prefork parent never sees its children's tasks: it reports no count rather than 0
    assert gpu.worker_stats(gpus=False, counts_in_process=False) == {"runs_in_flight": None}


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worker_retires_after_its_task_limit_finishing_its_run(start_worker, api, session):
    worker = start_worker("recycled", args=("--pool", "solo"), **{gpu.RECYCLE_AFTER_TASKS_ENV: "1"})
    response = api.post(
        "/api/v1/runs", {"session": str(session.pk), "kind": "echo", "payload": {"n": 1}}, format="json"
    )
    run = wait_for_run(response.json()["id"], {"succeeded", "failed"})
    assert run.status == "succeeded" and run.worker_hostname == worker.hostname
    # warm shutdown after the run: the process ends by itself, cleanly, for its launcher to replace
    assert worker.process.wait(timeout=60) == 0
    assert "worker recycling: 1 runs done (limit 1)" in worker.log_path.read_text()
