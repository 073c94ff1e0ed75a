"""Prometheus metrics.

HTTP metrics are counted in the web process (prometheus_client's multiprocess
mode when PROMETHEUS_MULTIPROC_DIR is set, as under gunicorn). Each app adds
its own collector of database figures with `register_collector` (runs: counts,
durations, queue depth); the database is the source of truth on every host, so
counts survive restarts and need no shared directory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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


# Metrics counted in the web process itself (beside the HTTP ones): registered for the scrape
# here, or read from every process's files in multiprocess mode.
_PROCESS_METRICS: list[Collector] = [HTTP_REQUESTS, HTTP_LATENCY]


ProcessMetric = TypeVar("ProcessMetric", bound=Collector)


def register_process_metric(metric: ProcessMetric) -> ProcessMetric:
    """A Counter/Gauge/Histogram of this process, added to every /metrics scrape."""
    if metric not in _PROCESS_METRICS:
        _PROCESS_METRICS.append(metric)
    return metric


def observe_http_request(*, view: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(view=view, method=method, status=str(status)).inc()
    HTTP_LATENCY.labels(view=view).observe(seconds)


# Collectors that apps register in their AppConfig.ready(): each app reports its own
# figures, so this module needs to know none of them.
_APP_COLLECTORS: list[Collector] = []


def register_collector(collector: Collector) -> Collector:
    """Add a collector to every /metrics scrape (idempotent per instance)."""
    if collector not in _APP_COLLECTORS:
        _APP_COLLECTORS.append(collector)
    return collector


class CachedCollector(Collector):
    """Reuses what `read()` returned for `ttl` seconds.

    /metrics may be scraped by anyone allowed to: a scrape storm must not turn into a
    query storm, so database figures are reused for a few seconds (Prometheus scrapes
    every 15 s).
    """

    ttl = 5.0

    def __init__(self) -> None:
        self._cached: tuple[float, Any] | None = None

    def read(self) -> Any:
        raise NotImplementedError

    def metrics(self, figures: Any) -> Iterator[Metric]:
        raise NotImplementedError

    def collect(self) -> Iterator[Metric]:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > self.ttl:
            self._cached = (now, self.read())
        yield from self.metrics(self._cached[1])


def forget_cached_figures() -> None:
    """The next scrape reads the database again (tests; a deploy hook may use it too)."""
    for collector in _APP_COLLECTORS:
        if isinstance(collector, CachedCollector):
            collector._cached = None


class WorkerMetricsCollector(CachedCollector):
    """Live workers, from their heartbeat rows."""

    def read(self) -> int:
        from apps.core.selectors import worker_live_list

        return len(worker_live_list())

    def metrics(self, figures: int) -> Iterator[Metric]:
        workers = GaugeMetricFamily("limitgraph_workers_alive", "Workers with a recent heartbeat.")
        workers.add_metric([], figures)
        yield workers


register_collector(WorkerMetricsCollector())


def render_latest() -> tuple[bytes, str]:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        for metric in _PROCESS_METRICS:
            registry.register(metric)
    for collector in _APP_COLLECTORS:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST
