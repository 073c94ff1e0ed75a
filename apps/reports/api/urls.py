from __future__ import annotations

from django.urls import path

from apps.reports.api import views

urlpatterns = [
    path("artifacts/export", views.ExportApi.as_view(), name="export"),
    path("runs/compare", views.RunCompareApi.as_view(), name="run-compare"),
    path("runs/<uuid:run_id>/export", views.RunExportApi.as_view(), name="run-export"),
    path("traces/<uuid:trace_id>/export", views.TraceExportApi.as_view(), name="trace-export"),
    path("sessions/<uuid:session_id>/export", views.SessionExportApi.as_view(), name="session-export"),
]
