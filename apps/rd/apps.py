from __future__ import annotations

from django.apps import AppConfig


class RdConfig(AppConfig):
    name = "apps.rd"
    label = "rd"
    verbose_name = "Rate-distortion"
