from __future__ import annotations

from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.sessions import selectors, services
from apps.sessions.api.serializers import SessionCreateInputSerializer, SessionOutputSerializer


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
        session = selectors.session_get_for_user(user=request.user, session_id=session_id)
        if session is None:
            raise NotFound("Session not found.")
        return Response(SessionOutputSerializer(session).data)
