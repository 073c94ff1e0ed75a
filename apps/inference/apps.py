from __future__ import annotations

from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "apps.inference"
    verbose_name = "Inference"

    def ready(self) -> None:
        from apps.core.metrics import register_collector
        from apps.inference.metrics import WorkerDeviceMetricsCollector

        register_collector(WorkerDeviceMetricsCollector())
