from __future__ import annotations

from django.urls import path, register_converter

from apps.sessions.api.views import (
    SessionDetailApi,
    SessionListCreateApi,
    SessionWorkspaceApi,
    SessionWorkspaceFileApi,
)


class WorkspacePathConverter:
    """A file's path in a workspace: one or more components, never a trailing slash (the
    URL without it is the same file: config.urls serves both forms alike)."""

    regex = r".*[^/]"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(WorkspacePathConverter, "workspace_path")

urlpatterns = [
    path("sessions", SessionListCreateApi.as_view(), name="session-list"),
    path("sessions/<uuid:session_id>", SessionDetailApi.as_view(), name="session-detail"),
    path("sessions/<uuid:session_id>/workspace", SessionWorkspaceApi.as_view(), name="session-workspace"),
    path(
        "sessions/<uuid:session_id>/workspace/<workspace_path:name>",
        SessionWorkspaceFileApi.as_view(),
        name="session-workspace-file",
    ),
]
