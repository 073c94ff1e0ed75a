"""The runs app's Prometheus figures, read from the Run table at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from apps.core.metrics import CachedCollector
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
