from __future__ import annotations

from django.urls import path

from apps.plots.api.views import DurationsPlotApi, RDPlotApi

urlpatterns = [
    path("plots/rd", RDPlotApi.as_view(), name="plot-rd"),
    path("plots/durations", DurationsPlotApi.as_view(), name="plot-durations"),
]
