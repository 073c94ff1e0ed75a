from __future__ import annotations

from django.apps import AppConfig


class PlotsConfig(AppConfig):
    name = "apps.plots"
    label = "plots"
    verbose_name = "Plots"
