from __future__ import annotations

from django.apps import AppConfig


class ComputeSessionsConfig(AppConfig):
    name = "apps.sessions"
    # django.contrib.sessions already owns the label "sessions".
    label = "compute_sessions"
    verbose_name = "Sessions"

    def ready(self) -> None:
        from apps.sessions import receivers  # noqa: F401  (a session's workspace goes with it)
