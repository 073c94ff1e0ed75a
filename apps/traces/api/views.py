from __future__ import annotations

from dataclasses import asdict
from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.exceptions import NotFound
from apps.core.validators import StrictUUIDField
from apps.traces import selectors, services
from apps.traces.api.serializers import (
    ProvenanceAppendInputSerializer,
    ProvenanceEntryOutputSerializer,
    TraceCreateInputSerializer,
    TraceOutputSerializer,
    TraceVerifyOutputSerializer,
)
from apps.traces.models import Trace


class TraceFilterSerializer(serializers.Serializer):
    session = StrictUUIDField(required=False)


def _trace_or_404(request: Request, trace_id: UUID) -> Trace:
    trace = selectors.trace_get_for_user(user=request.user, trace_id=trace_id)
    if trace is None:
        raise NotFound("Trace not found.")
    return trace


class TraceListCreateApi(ListAPIView):
    serializer_class = TraceOutputSerializer

    @extend_schema(parameters=[OpenApiParameter("session", UUID)])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        filters = TraceFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.trace_list_for_user(
            user=self.request.user, session_id=filters.validated_data.get("session")
        )

    @extend_schema(request=TraceCreateInputSerializer, responses={201: TraceOutputSerializer})
    def post(self, request: Request) -> Response:
        data = TraceCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        trace = services.trace_create(user=request.user, session_id=values.pop("session"), **values)
        return Response(TraceOutputSerializer(trace).data, status=status.HTTP_201_CREATED)


class TraceDetailApi(APIView):
    @extend_schema(responses={200: TraceOutputSerializer})
    def get(self, request: Request, trace_id: UUID) -> Response:
        return Response(TraceOutputSerializer(_trace_or_404(request, trace_id)).data)


class TraceProvenanceApi(ListAPIView):
    serializer_class = ProvenanceEntryOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.provenance_list(trace=_trace_or_404(self.request, self.kwargs["trace_id"]))

    @extend_schema(request=ProvenanceAppendInputSerializer, responses={201: ProvenanceEntryOutputSerializer})
    def post(self, request: Request, trace_id: UUID) -> Response:
        data = ProvenanceAppendInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        entry = services.provenance_append_for_user(
            user=request.user, trace_id=trace_id, **data.validated_data
        )
        return Response(ProvenanceEntryOutputSerializer(entry).data, status=status.HTTP_201_CREATED)


class TraceVerifyApi(APIView):
    @extend_schema(responses={200: TraceVerifyOutputSerializer})
    def get(self, request: Request, trace_id: UUID) -> Response:
        verification = services.trace_verify(trace=_trace_or_404(request, trace_id))
        return Response(TraceVerifyOutputSerializer(asdict(verification)).data)
