"""The runs app's Prometheus figures, read from the Run table at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from apps.core.metrics import CachedCollector
from apps.core.queues import ALL_QUEUES, Queue
from apps.runs.backpressure import queues_pressure, queues_snapshot
from apps.runs.selectors import RunMetricsSnapshot, run_metrics_snapshot

RUN_DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class RunMetricsCollector(CachedCollector):
    """Run counts, durations and queue depth."""

    def read(self) -> RunMetricsSnapshot:
        return run_metrics_snapshot(buckets=RUN_DURATION_BUCKETS)

    def metrics(self, snapshot: RunMetricsSnapshot) -> Iterator[Metric]:
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


class BackpressureCollector(Collector):
    """Each queue's backpressure state, from the figures the submission checks use (read
    from the database at most once a second, apps.runs.backpressure)."""

    def collect(self) -> Iterator[Metric]:
        snapshot = queues_snapshot()
        run_queues = {queue for queue in ALL_QUEUES if queue != Queue.CONTROL}  # control carries no runs
        queues = sorted(run_queues | set(snapshot.queues))
        refusing = GaugeMetricFamily(
            "limitgraph_queue_backpressure",
            "1 while the queue refuses new submissions (backed up), else 0.",
            labels=["queue"],
        )
        retry_after = GaugeMetricFamily(
            "limitgraph_queue_retry_after_seconds",
            "The Retry-After a refused submission gets (0 while accepting).",
            labels=["queue"],
        )
        waiting = GaugeMetricFamily(
            "limitgraph_queue_waiting_runs",
            "Runs cleared to run and not yet claimed (queued, or pending and due).",
            labels=["queue"],
        )
        oldest = GaugeMetricFamily(
            "limitgraph_queue_oldest_wait_seconds",
            "How long the queue's oldest waiting run has waited since it was sent.",
            labels=["queue"],
        )
        drain = GaugeMetricFamily(
            "limitgraph_queue_drain_rate",
            "Runs per second that ended on the queue over the drain window.",
            labels=["queue"],
        )
        for pressure in queues_pressure(queues):
            labels = [pressure.queue]
            refusing.add_metric(labels, 1 if pressure.refusing else 0)
            retry_after.add_metric(labels, pressure.retry_after or 0)
            waiting.add_metric(labels, pressure.waiting)
            oldest.add_metric(labels, round(pressure.oldest_wait_seconds, 3))
            drain.add_metric(labels, pressure.drain_per_second)
        yield from (refusing, retry_after, waiting, oldest, drain)
