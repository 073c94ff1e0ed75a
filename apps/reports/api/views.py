"""Exports and comparisons over HTTP.

Exports: `POST /api/v1/artifacts/export` with `{"run" | "trace" | "session": <id>, "format"}`, or
`GET /api/v1/{runs|traces|sessions}/{id}/export?format=&table=`; answered 200 with the content
streamed and a Content-Disposition file name. Compare: `POST /api/v1/runs/compare`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import UUID

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.reports.api.serializers import (
    ExportInputSerializer,
    ExportOptionsSerializer,
    RunCompareInputSerializer,
)
from apps.reports.compare import run_compare
from apps.reports.exports import Export, export_render
from apps.reports.selectors import SCOPE_TYPES, export_scope_get_for_user

EXPORT_RESPONSES = {
    (200, "application/octet-stream"): OpenApiResponse(
        OpenApiTypes.BINARY,
        description="The export (application/json, text/csv, text/markdown or application/zip), streamed, "
        "with a Content-Disposition file name.",
    )
}


class IgnoreFormatNegotiation(BaseContentNegotiation):
    """`format` names the export here, not a renderer: errors always answer in JSON."""

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: list[Any], format_suffix: str | None = None
    ) -> Any:
        return renderers[0], renderers[0].media_type


async def _pulled(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    # One chunk at a time from the database-reading generator, in the thread that serves the
    # view's database connection; an ASGI server would otherwise read a sync iterator whole.
    pull = sync_to_async(lambda: next(chunks, None), thread_sensitive=True)
    while (chunk := await pull()) is not None:
        yield chunk


def export_response(request: Request, export: Export) -> StreamingHttpResponse:
    served_async = isinstance(request._request, ASGIRequest)
    response = StreamingHttpResponse(
        _pulled(export.chunks) if served_async else export.chunks, content_type=export.content_type
    )
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response


def _export(
    request: Request, scope_type: str, object_id: UUID | str, options: dict[str, Any]
) -> StreamingHttpResponse:
    scope = export_scope_get_for_user(user=request.user, scope_type=scope_type, object_id=object_id)
    export = export_render(
        scope=scope,
        export_format=options["format"],
        table=options.get("table", "runs"),
        base_url=request.build_absolute_uri("/"),
    )
    return export_response(request, export)


class ExportApi(APIView):
    content_negotiation_class = IgnoreFormatNegotiation

    @extend_schema(request=ExportInputSerializer, responses=EXPORT_RESPONSES)
    def post(self, request: Request) -> StreamingHttpResponse:
        data = ExportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        scope_type = next(name for name in SCOPE_TYPES if name in values)
        return _export(request, scope_type, values[scope_type], values)


class _ScopeExportApi(APIView):
    content_negotiation_class = IgnoreFormatNegotiation
    scope_type = ""

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=["json", "csv", "markdown", "bundle"]),
            OpenApiParameter("table", str, enum=["runs", "rd_points"]),
        ],
        responses=EXPORT_RESPONSES,
    )
    def get(self, request: Request, **ids: UUID) -> StreamingHttpResponse:
        options = ExportOptionsSerializer(data=request.query_params)
        options.is_valid(raise_exception=True)
        return _export(request, self.scope_type, ids[f"{self.scope_type}_id"], options.validated_data)


class RunExportApi(_ScopeExportApi):
    scope_type = "run"


class TraceExportApi(_ScopeExportApi):
    scope_type = "trace"


class SessionExportApi(_ScopeExportApi):
    scope_type = "session"


class RunCompareApi(APIView):
    @extend_schema(request=RunCompareInputSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        data = RunCompareInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        return Response(
            run_compare(
                user=request.user,
                run_ids=values["runs"],
                metric=values.get("metric"),
                goal=values.get("goal"),
            )
        )
