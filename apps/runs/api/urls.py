from __future__ import annotations

from django.urls import path

from apps.runs.api import events, views

urlpatterns = [
    path("runs", views.RunListSubmitApi.as_view(), name="run-list"),
    path("runs/batch", views.RunBatchSubmitApi.as_view(), name="run-batch"),
    path("runs/<uuid:run_id>", views.RunDetailApi.as_view(), name="run-detail"),
    path("runs/<uuid:run_id>/cancel", views.RunCancelApi.as_view(), name="run-cancel"),
    path("runs/<uuid:run_id>/progress", views.RunProgressApi.as_view(), name="run-progress"),
    path("runs/<uuid:run_id>/events", events.RunEventsApi.as_view(), name="run-events"),
    path("sessions/<uuid:session_id>/events", events.SessionEventsApi.as_view(), name="session-events"),
]
