from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.bookmarks import selectors, services
from apps.bookmarks.api.serializers import (
    SavedRunCreateInputSerializer,
    SavedRunListFilterSerializer,
    SavedRunOutputSerializer,
    SavedRunRunInputSerializer,
    SavedRunUpdateInputSerializer,
)
from apps.core.exceptions import NotFound
from apps.runs.api.serializers import RunOutputSerializer
from apps.runs.api.views import IDEMPOTENCY_KEY_PARAMETER, _idempotency_key


class SavedRunListCreateApi(ListAPIView):
    serializer_class = SavedRunOutputSerializer

    @extend_schema(parameters=[OpenApiParameter("tag", str), OpenApiParameter("q", str)])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        filters = SavedRunListFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        values = filters.validated_data
        return selectors.saved_run_list_for_user(
            user=self.request.user, tag=values.get("tag"), search=values.get("q")
        )

    @extend_schema(request=SavedRunCreateInputSerializer, responses={201: SavedRunOutputSerializer})
    def post(self, request: Request) -> Response:
        data = SavedRunCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        saved = services.saved_run_create(
            user=request.user,
            name=values["name"],
            kind=values["kind"],
            payload=values["payload"],
            tags=values["tags"],
            session_id=values["session"],
            priority=values["priority"],
        )
        return Response(SavedRunOutputSerializer(saved).data, status=status.HTTP_201_CREATED)


class SavedRunDetailApi(APIView):
    @extend_schema(responses={200: SavedRunOutputSerializer})
    def get(self, request: Request, saved_run_id: UUID) -> Response:
        saved = selectors.saved_run_get_for_user(user=request.user, saved_run_id=saved_run_id)
        if saved is None:
            raise NotFound("Saved run not found.")
        return Response(SavedRunOutputSerializer(saved).data)

    @extend_schema(request=SavedRunUpdateInputSerializer, responses={200: SavedRunOutputSerializer})
    def patch(self, request: Request, saved_run_id: UUID) -> Response:
        data = SavedRunUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        saved = services.saved_run_update(
            user=request.user, saved_run_id=saved_run_id, changes=dict(data.validated_data)
        )
        return Response(SavedRunOutputSerializer(saved).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, saved_run_id: UUID) -> Response:
        services.saved_run_delete(user=request.user, saved_run_id=saved_run_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SavedRunRunApi(APIView):
    @extend_schema(
        request=SavedRunRunInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: RunOutputSerializer, 200: RunOutputSerializer},
    )
    def post(self, request: Request, saved_run_id: UUID) -> Response:
        key = _idempotency_key(request)
        data = SavedRunRunInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        run, created = services.saved_run_run(
            user=request.user,
            saved_run_id=saved_run_id,
            payload_overrides=values["payload"],
            session_id=values.get("session"),
            priority=values.get("priority"),
            idempotency_key=key,
        )
        return Response(
            RunOutputSerializer(run).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )
