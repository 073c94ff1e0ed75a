from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.sessions import selectors, services, workspace
from apps.sessions.api.serializers import (
    SessionCreateInputSerializer,
    SessionOutputSerializer,
    WorkspaceOutputSerializer,
)
from apps.sessions.models import Session


def _session_or_404(request: Request, session_id: UUID) -> Session:
    session = selectors.session_get_for_user(user=request.user, session_id=session_id)
    if session is None:
        raise NotFound("Session not found.")
    return session


class SessionListCreateApi(ListAPIView):
    serializer_class = SessionOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.session_list_for_user(user=self.request.user)

    @extend_schema(request=SessionCreateInputSerializer, responses={201: SessionOutputSerializer})
    def post(self, request: Request) -> Response:
        data = SessionCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.session_create(owner=request.user, **data.validated_data)
        return Response(SessionOutputSerializer(session).data, status=status.HTTP_201_CREATED)


class SessionDetailApi(APIView):
    @extend_schema(responses={200: SessionOutputSerializer})
    def get(self, request: Request, session_id: UUID) -> Response:
        return Response(SessionOutputSerializer(_session_or_404(request, session_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, session_id: UUID) -> Response:
        services.session_delete(user=request.user, session_id=session_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionWorkspaceApi(APIView):
    @extend_schema(responses={200: WorkspaceOutputSerializer})
    def get(self, request: Request, session_id: UUID) -> Response:
        session = _session_or_404(request, session_id)
        listing = workspace.workspace_list(session_id=session.pk)
        return Response(WorkspaceOutputSerializer(listing).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, session_id: UUID) -> Response:
        session = _session_or_404(request, session_id)
        workspace.workspace_clear(session_id=session.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RawFileNegotiation(BaseContentNegotiation):
    """A file answers with its bytes whatever Accept says; errors in JSON."""

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: list[Any], format_suffix: str | None = None
    ) -> Any:
        return renderers[0], renderers[0].media_type


class SessionWorkspaceFileApi(APIView):
    content_negotiation_class = RawFileNegotiation

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file's bytes."
            )
        }
    )
    def get(self, request: Request, session_id: UUID, name: str) -> HttpResponse:
        session = _session_or_404(request, session_id)
        opened, size = workspace.workspace_open_file(session_id=session.pk, name=name)
        response = FileResponse(
            opened,
            as_attachment=True,
            filename=name.rsplit("/", 1)[-1],
            content_type="application/octet-stream",
        )
        response["Content-Length"] = str(size)
        response["Cache-Control"] = "private, no-store"
        return response

    @extend_schema(responses={204: None})
    def delete(self, request: Request, session_id: UUID, name: str) -> Response:
        session = _session_or_404(request, session_id)
        workspace.workspace_delete_file(session_id=session.pk, name=name)
        return Response(status=status.HTTP_204_NO_CONTENT)
