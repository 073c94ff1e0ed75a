from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.runs import selectors, services
from apps.runs.api.serializers import (
    RunBatchOutputSerializer,
    RunBatchSubmitInputSerializer,
    RunListFilterSerializer,
    RunOutputSerializer,
    RunProgressOutputSerializer,
    RunSubmitInputSerializer,
)
from apps.runs.models import Run
from apps.sessions.models import Session
from apps.sessions.selectors import session_get_for_user

IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="Repeat a submit safely: the same key returns the same run (200).",
)


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY_PATTERN.match(key):
        raise serializers.ValidationError(
            {"Idempotency-Key": ["1 to 255 visible ASCII characters, no spaces."]}
        )
    return key


def _sessions_for(request: Request, ids: set[UUID]) -> dict[UUID, Session]:
    sessions = {}
    for session_id in ids:
        session = session_get_for_user(user=request.user, session_id=session_id)
        if session is not None:
            sessions[session_id] = session
    return sessions


def _spec(data: dict[str, Any], sessions: dict[UUID, Session]) -> services.RunSpec:
    session = sessions.get(data["session"])
    if session is None:
        raise serializers.ValidationError({"session": ["Session not found."]})
    return services.RunSpec(
        session=session, kind=data["kind"], payload=data["payload"], priority=data["priority"]
    )


def _run_or_404(request: Request, run_id: UUID) -> Run:
    run = selectors.run_get_for_user(user=request.user, run_id=run_id)
    if run is None:
        raise NotFound("Run not found.")
    return run


class RunListSubmitApi(ListAPIView):
    serializer_class = RunOutputSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("session", UUID),
            OpenApiParameter("status", str),
            OpenApiParameter("kind", str),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        filters = RunListFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        values = filters.validated_data
        return selectors.run_list_for_user(
            user=self.request.user,
            session_id=values.get("session"),
            status=values.get("status"),
            kind=values.get("kind"),
        )

    @extend_schema(
        request=RunSubmitInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: RunOutputSerializer, 200: RunOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        key = _idempotency_key(request)
        data = RunSubmitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        spec = _spec(data.validated_data, _sessions_for(request, {data.validated_data["session"]}))
        run, created = services.run_submit(user=request.user, spec=spec, idempotency_key=key)
        return Response(
            RunOutputSerializer(run).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class RunBatchSubmitApi(APIView):
    @extend_schema(request=RunBatchSubmitInputSerializer, responses={201: RunBatchOutputSerializer})
    def post(self, request: Request) -> Response:
        data = RunBatchSubmitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        items = data.validated_data["runs"]
        sessions = _sessions_for(request, {item["session"] for item in items})
        specs, errors = [], {}
        for index, item in enumerate(items):
            try:
                specs.append(_spec(item, sessions))
            except serializers.ValidationError as exc:
                errors[str(index)] = exc.detail
        if errors:
            raise serializers.ValidationError({"runs": errors})
        runs = services.run_submit_batch(user=request.user, specs=specs)
        return Response({"runs": RunOutputSerializer(runs, many=True).data}, status=status.HTTP_201_CREATED)


class RunDetailApi(APIView):
    @extend_schema(responses={200: RunOutputSerializer})
    def get(self, request: Request, run_id: UUID) -> Response:
        return Response(RunOutputSerializer(_run_or_404(request, run_id)).data)


class RunCancelApi(APIView):
    @extend_schema(request=None, responses={202: RunOutputSerializer})
    def post(self, request: Request, run_id: UUID) -> Response:
        run = services.run_cancel(run=_run_or_404(request, run_id), actor=request.user.get_username())
        return Response(RunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class RunProgressApi(APIView):
    """The few fields a client polls while a run executes."""

    @extend_schema(responses={200: RunProgressOutputSerializer})
    def get(self, request: Request, run_id: UUID) -> Response:
        return Response(RunProgressOutputSerializer(_run_or_404(request, run_id)).data)
