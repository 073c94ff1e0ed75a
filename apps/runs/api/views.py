from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.exceptions import NotFound, ValidationFailed
from apps.runs import selectors, services
from apps.runs.api.serializers import (
    RunBatchOutputSerializer,
    RunBatchSubmitInputSerializer,
    RunListFilterSerializer,
    RunListOutputSerializer,
    RunOutputSerializer,
    RunProgressOutputSerializer,
    RunSubmitInputSerializer,
    run_json,
    submission_values,
)
from apps.runs.models import Run

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
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):  # "$" also matches before a final "\n"
        raise ValidationFailed(fields={"Idempotency-Key": ["1 to 255 visible ASCII characters, no spaces."]})
    return key


def _run_request(data: dict[str, Any]) -> services.RunRequest:
    return services.RunRequest(
        session_id=data["session"], kind=data["kind"], payload=data["payload"], priority=data["priority"]
    )


def _run_or_404(request: Request, run_id: UUID) -> Run:
    run = selectors.run_get_for_user(user=request.user, run_id=run_id)
    if run is None:
        raise NotFound("Run not found.")
    return run


class RunListSubmitApi(ListAPIView):
    serializer_class = RunListOutputSerializer

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
        return selectors.run_rows_for_user(
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
        values = submission_values(request.data)
        run, created = services.run_submit(
            user=request.user,
            session_id=values["session"],
            kind=values["kind"],
            payload=values["payload"],
            priority=values["priority"],
            idempotency_key=key,
        )
        return Response(
            run_json(run),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class RunBatchSubmitApi(APIView):
    @extend_schema(
        request=RunBatchSubmitInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: RunBatchOutputSerializer, 200: RunBatchOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        key = _idempotency_key(request)
        data = RunBatchSubmitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        runs, created = services.run_submit_batch(
            user=request.user,
            requests=[_run_request(item) for item in data.validated_data["runs"]],
            idempotency_key=key,
        )
        return Response(
            {"runs": [run_json(run) for run in runs]},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class RunDetailApi(APIView):
    @extend_schema(responses={200: RunOutputSerializer})
    def get(self, request: Request, run_id: UUID) -> Response:
        return Response(run_json(_run_or_404(request, run_id)))


class RunCancelApi(APIView):
    @extend_schema(request=None, responses={202: RunOutputSerializer})
    def post(self, request: Request, run_id: UUID) -> Response:
        run = services.run_cancel(user=request.user, run_id=run_id)
        return Response(run_json(run), status=status.HTTP_202_ACCEPTED)


class RunProgressApi(APIView):
    """The few fields a client polls while a run executes."""

    @extend_schema(responses={200: RunProgressOutputSerializer})
    def get(self, request: Request, run_id: UUID) -> Response:
        return Response(RunProgressOutputSerializer(_run_or_404(request, run_id)).data)
