from __future__ import annotations

from django.urls import path

from apps.sessions.api.views import (
    SessionDetailApi,
    SessionListCreateApi,
    SessionWorkspaceApi,
    SessionWorkspaceFileApi,
)

urlpatterns = [
    path("sessions", SessionListCreateApi.as_view(), name="session-list"),
    path("sessions/<uuid:session_id>", SessionDetailApi.as_view(), name="session-detail"),
    path("sessions/<uuid:session_id>/workspace", SessionWorkspaceApi.as_view(), name="session-workspace"),
    path(
        "sessions/<uuid:session_id>/workspace/<path:name>",
        SessionWorkspaceFileApi.as_view(),
        name="session-workspace-file",
    ),
]
