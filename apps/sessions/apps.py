from __future__ import annotations

from django.apps import AppConfig


class ComputeSessionsConfig(AppConfig):
    name = "apps.sessions"
    # django.contrib.sessions already owns the label "sessions".
    label = "compute_sessions"
    verbose_name = "Sessions"
