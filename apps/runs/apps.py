from __future__ import annotations

from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "apps.runs"
    label = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from apps.core.metrics import register_collector
        from apps.runs.kinds import load_kinds
        from apps.runs.metrics import BackpressureCollector, RunMetricsCollector

        load_kinds()
        register_collector(RunMetricsCollector())
        register_collector(BackpressureCollector())
