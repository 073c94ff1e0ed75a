"""Per-worker device figures for /metrics, from the workers' heartbeat rows: GPU memory used
and total, utilisation, and runs in flight. Workers measure them (workers.gpu) and send
them with each heartbeat, so the web process reads the database, never a GPU."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from apps.core.metrics import CachedCollector
from apps.core.selectors import worker_live_list


class WorkerDeviceMetricsCollector(CachedCollector):
    def read(self) -> list[tuple[str, dict[str, Any]]]:
        return [(worker.hostname, worker.stats or {}) for worker in worker_live_list()]

    def metrics(self, figures: list[tuple[str, dict[str, Any]]]) -> Iterator[Metric]:
        in_flight = GaugeMetricFamily(
            "limitgraph_worker_runs_in_flight", "Runs executing on a worker now.", labels=["worker"]
        )
        used = GaugeMetricFamily(
            "limitgraph_gpu_memory_used_bytes",
            "GPU memory in use, per worker's GPU.",
            labels=["worker", "gpu"],
        )
        total = GaugeMetricFamily(
            "limitgraph_gpu_memory_total_bytes",
            "GPU memory in all, per worker's GPU.",
            labels=["worker", "gpu"],
        )
        utilisation = GaugeMetricFamily(
            "limitgraph_gpu_utilization_ratio",
            "GPU busy fraction over the last sample period (NVML), per worker's GPU.",
            labels=["worker", "gpu"],
        )
        for hostname, stats in figures:
            if stats.get("runs_in_flight") is not None:
                in_flight.add_metric([hostname], stats["runs_in_flight"])
            for gpu in stats.get("gpus", ()):
                labels = [hostname, str(gpu.get("index", ""))]
                used.add_metric(labels, gpu.get("memory_used_bytes", 0))
                total.add_metric(labels, gpu.get("memory_total_bytes", 0))
                utilisation.add_metric(labels, gpu.get("utilization", 0.0))
        yield from (in_flight, used, total, utilisation)
