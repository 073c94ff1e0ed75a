"""The plots, as pictures: `GET /api/v1/plots/rd?run=|session=&format=svg|png` and
`GET /api/v1/plots/durations?session=&format=`.

Pictures are drawn on a worker (control queue) and kept as artifacts: a plot not drawn yet,
or older than its data, is asked for here. The first request for one is a 202 (ask again
after Retry-After); a stale picture is served while its successor is drawn.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from uuid import UUID

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.artifacts.services import artifact_delete, artifact_open
from apps.core.exceptions import NotFound
from apps.plots import selectors, services
from apps.plots.api.serializers import (
    DurationsPlotQuerySerializer,
    PlotRenderingOutputSerializer,
    RDPlotQuerySerializer,
)
from apps.plots.models import PlotSubject
from apps.rd.selectors import rd_curve_list_for_user
from apps.sessions.selectors import session_get_for_user

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2
# SVG is a document: ours holds no script, and this says none may run should one get in.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"

PLOT_RESPONSES = {
    (200, "image/svg+xml"): OpenApiResponse(OpenApiTypes.BINARY, description="The picture (or image/png)."),
    202: OpenApiResponse(
        PlotRenderingOutputSerializer, description="Not drawn yet: ask again after Retry-After."
    ),
    304: OpenApiResponse(description="If-None-Match named the picture's ETag."),
}
FORMAT_PARAMETER = OpenApiParameter(
    "format", str, enum=["svg", "png"], description="svg (the default) or png"
)


class JSONErrorsNegotiation(BaseContentNegotiation):
    """A picture answers as itself whatever Accept says (an <img> asks for image/*); errors in JSON."""

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: list[Any], format_suffix: str | None = None
    ) -> Any:
        return renderers[0], renderers[0].media_type


def _query(request: Request, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


def _picture(
    request: Request,
    *,
    subject: str,
    session_id: UUID | str,
    run_id: UUID | str | None,
    fmt: str,
    data_as_of: datetime,
) -> HttpResponse:
    plot = selectors.plot_find(session_id=session_id, subject=subject, fmt=fmt, run_id=run_id)
    if plot is None or plot.data_as_of < data_as_of:
        services.plot_request_render(subject=subject, session_id=session_id, run_id=run_id)
    if plot is None:
        body = PlotRenderingOutputSerializer({"status": "rendering", "retry_after": RETRY_AFTER_SECONDS}).data
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        )
    artifact = plot.artifact
    etag = f'"{artifact.sha256}"'
    if etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
        response = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
    else:
        try:
            with artifact_open(artifact=artifact) as stored:
                response = HttpResponse(stored.read(), content_type=artifact.content_type)
        except FileNotFoundError:
            logger.error("plot %s has no bytes at %s", plot.pk, artifact.storage_key)
            artifact_delete(artifact=artifact)  # forget it (its plot goes too): the next request redraws it
            raise NotFound("The plot's picture is missing from storage; ask again to redraw it.") from None
        response["Content-Disposition"] = f'inline; filename="{artifact.name}"'
        if fmt == "svg":
            response["Content-Security-Policy"] = SVG_CSP
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"  # revalidate: a newer picture may replace it
    response["X-Plot-Data-As-Of"] = plot.data_as_of.isoformat()
    return response


class RDPlotApi(APIView):
    content_negotiation_class = JSONErrorsNegotiation

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "run", UUID, description="an rd_sweep run: its curve, levels labelled, knee marked"
            ),
            OpenApiParameter("session", UUID, description="a session: its newest sweeps' curves on one plot"),
            FORMAT_PARAMETER,
        ],
        responses=PLOT_RESPONSES,
    )
    def get(self, request: Request) -> HttpResponse:
        """The rate-distortion curve (rate against distortion) of a sweep, or of a session's sweeps."""
        query = _query(request, RDPlotQuerySerializer)
        if "run" in query:
            curve = rd_curve_list_for_user(user=request.user, run_id=query["run"]).first()
            if curve is None:
                raise NotFound("No RD curve for this run: it is not a succeeded rd_sweep run of yours.")
            return _picture(
                request,
                subject=PlotSubject.RD_RUN,
                session_id=curve.session_id,
                run_id=curve.run_id,
                fmt=query["format"],
                data_as_of=curve.created_at,
            )
        if session_get_for_user(user=request.user, session_id=query["session"]) is None:
            raise NotFound("Session not found.")
        return _session_picture(request, PlotSubject.RD_SESSION, query, "This session has no RD sweep yet.")


class DurationsPlotApi(APIView):
    content_negotiation_class = JSONErrorsNegotiation

    @extend_schema(
        parameters=[OpenApiParameter("session", UUID, required=True), FORMAT_PARAMETER],
        responses=PLOT_RESPONSES,
    )
    def get(self, request: Request) -> HttpResponse:
        """Durations of a session's finished runs, one box per kind."""
        query = _query(request, DurationsPlotQuerySerializer)
        if session_get_for_user(user=request.user, session_id=query["session"]) is None:
            raise NotFound("Session not found.")
        return _session_picture(
            request, PlotSubject.DURATIONS, query, "This session has no finished run yet."
        )


def _session_picture(request: Request, subject: str, query: dict[str, Any], nothing: str) -> HttpResponse:
    data_as_of = selectors.plot_data_as_of(subject=subject, session_id=query["session"])
    if data_as_of is None:
        raise NotFound(nothing)
    return _picture(
        request,
        subject=subject,
        session_id=query["session"],
        run_id=None,
        fmt=query["format"],
        data_as_of=data_as_of,
    )
