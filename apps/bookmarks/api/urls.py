from __future__ import annotations

from django.urls import path

from apps.bookmarks.api import views

urlpatterns = [
    path("saved-runs", views.SavedRunListCreateApi.as_view(), name="saved-run-list"),
    path("saved-runs/<uuid:saved_run_id>", views.SavedRunDetailApi.as_view(), name="saved-run-detail"),
    path("saved-runs/<uuid:saved_run_id>/run", views.SavedRunRunApi.as_view(), name="saved-run-run"),
]
