from __future__ import annotations

from django.urls import path

from apps.runs.api import views

urlpatterns = [
    path("runs", views.RunListSubmitApi.as_view(), name="run-list"),
    path("runs/batch", views.RunBatchSubmitApi.as_view(), name="run-batch"),
    path("runs/<uuid:run_id>", views.RunDetailApi.as_view(), name="run-detail"),
    path("runs/<uuid:run_id>/cancel", views.RunCancelApi.as_view(), name="run-cancel"),
    path("runs/<uuid:run_id>/progress", views.RunProgressApi.as_view(), name="run-progress"),
]
