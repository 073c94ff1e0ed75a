from __future__ import annotations

from django.urls import path

from apps.sessions.api.views import SessionDetailApi, SessionListCreateApi

urlpatterns = [
    path("sessions", SessionListCreateApi.as_view(), name="session-list"),
    path("sessions/<uuid:session_id>", SessionDetailApi.as_view(), name="session-detail"),
]
