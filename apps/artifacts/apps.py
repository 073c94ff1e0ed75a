from __future__ import annotations

from django.apps import AppConfig


class ArtifactsConfig(AppConfig):
    name = "apps.artifacts"
    label = "artifacts"
    verbose_name = "Artifacts"

    def ready(self) -> None:
        from apps.artifacts import receivers  # noqa: F401  (connects the storage clean-up)
