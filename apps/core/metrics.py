"""Prometheus metrics.

HTTP metrics are counted in the web process (prometheus_client's multiprocess
mode when PROMETHEUS_MULTIPROC_DIR is set, as under gunicorn). What workers do
is read from the database at scrape time: the Run table is the source of truth
on every host, so counts survive restarts and need no shared directory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

RUN_DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

HTTP_REQUESTS = Counter(
    "limitgraph_http_requests_total",
    "HTTP requests handled, by view, method and status.",
    ["view", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "limitgraph_http_request_duration_seconds",
    "HTTP request latency by view.",
    ["view"],
)


def observe_http_request(*, view: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(view=view, method=method, status=str(status)).inc()
    HTTP_LATENCY.labels(view=view).observe(seconds)


# /metrics is unauthenticated: a scrape storm must not turn into a query storm,
# so the database figures are reused for this long (Prometheus scrapes every 15 s).
DATABASE_FIGURES_TTL_SECONDS = 5.0
_cached_figures: tuple[float, Any, int] | None = None


def _database_figures() -> tuple[Any, int]:
    global _cached_figures
    from apps.core.selectors import worker_live_list
    from apps.runs.selectors import run_metrics_snapshot

    now = time.monotonic()
    if _cached_figures is None or now - _cached_figures[0] > DATABASE_FIGURES_TTL_SECONDS:
        snapshot = run_metrics_snapshot(buckets=RUN_DURATION_BUCKETS)
        _cached_figures = (now, snapshot, len(worker_live_list()))
    return _cached_figures[1], _cached_figures[2]


class RunMetricsCollector(Collector):
    """Run counts, durations, queue depth and live workers, from the database."""

    def collect(self) -> Iterator[Metric]:
        snapshot, live_workers = _database_figures()

        submitted = CounterMetricFamily(
            "limitgraph_runs_submitted", "Runs submitted, by kind.", labels=["kind"]
        )
        for kind, count in snapshot.submitted_by_kind.items():
            submitted.add_metric([kind], count)
        yield submitted

        finished = CounterMetricFamily(
            "limitgraph_runs_finished",
            "Runs that reached a final status, by kind and status.",
            labels=["kind", "status"],
        )
        for (kind, status), count in snapshot.finished_by_kind_status.items():
            finished.add_metric([kind, status], count)
        yield finished

        duration = HistogramMetricFamily(
            "limitgraph_run_duration_seconds",
            "Execution time of finished runs, by kind and queue.",
            labels=["kind", "queue"],
        )
        for (kind, queue), (cumulative, total) in snapshot.durations.items():
            buckets = [(str(bound), count) for bound, count in cumulative]
            duration.add_metric([kind, queue], buckets, sum_value=total)
        yield duration

        depth = GaugeMetricFamily("limitgraph_queue_depth", "Runs waiting on each queue.", labels=["queue"])
        for queue, count in snapshot.queued_by_queue.items():
            depth.add_metric([queue], count)
        yield depth

        workers = GaugeMetricFamily("limitgraph_workers_alive", "Workers with a recent heartbeat.")
        workers.add_metric([], live_workers)
        yield workers


def render_latest() -> tuple[bytes, str]:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(HTTP_REQUESTS)
        registry.register(HTTP_LATENCY)
    registry.register(RunMetricsCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST
