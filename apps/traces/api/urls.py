from __future__ import annotations

from django.urls import path

from apps.traces.api import views

urlpatterns = [
    path("traces", views.TraceListCreateApi.as_view(), name="trace-list"),
    path("traces/<uuid:trace_id>", views.TraceDetailApi.as_view(), name="trace-detail"),
    path("traces/<uuid:trace_id>/provenance", views.TraceProvenanceApi.as_view(), name="trace-provenance"),
    path("traces/<uuid:trace_id>/verify", views.TraceVerifyApi.as_view(), name="trace-verify"),
]
