"""`GET /api/v1/runs/{id}/events` and `GET /api/v1/sessions/{id}/events`: server-sent events.

DRF views, so authentication (token, API key, the browser's session), throttling and the
error shape are the API's own; what they return streams from an async iterator
(apps.runs.streams), which the ASGI server serves on its event loop after the view's thread
is done: an open stream holds no worker thread and no database connection.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.core.exceptions import NotFound, ValidationFailed
from apps.runs import selectors
from apps.runs.streams import RunStream, SessionStream
from apps.sessions.selectors import session_get_for_user

LAST_EVENT_ID_PATTERN = re.compile(r"^[0-9]{1,18}$")

EVENTS_PARAMETERS = [
    OpenApiParameter(
        "Last-Event-ID",
        str,
        location=OpenApiParameter.HEADER,
        required=False,
        description="Resume after this event id (EventSource sends it when it reconnects).",
    ),
    OpenApiParameter(
        "last_event_id", int, required=False, description="The same, for clients that cannot set headers."
    ),
]
EVENTS_RESPONSE = OpenApiResponse(
    OpenApiTypes.STR,
    description="text/event-stream: `id:`, `event:` status | progress | output | heartbeat, `data:` JSON.",
)


def _last_event_id(request: Request) -> int | None:
    given = request.headers.get("Last-Event-ID") or request.query_params.get("last_event_id")
    if given is None or given == "":
        return None
    if not LAST_EVENT_ID_PATTERN.match(given):
        raise ValidationFailed(fields={"Last-Event-ID": ["A non-negative integer: an event's `id`."]})
    return int(given)


def event_stream_response(stream: Any) -> StreamingHttpResponse:
    response = StreamingHttpResponse(stream, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on as it comes
    return response


class _EventStreamApi(APIView):
    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        # The stream is not rendered by DRF; its errors are JSON whatever the client accepts
        # (an EventSource asks for text/event-stream only).
        renderer = JSONRenderer()
        return renderer, renderer.media_type


class RunEventsApi(_EventStreamApi):
    @extend_schema(parameters=EVENTS_PARAMETERS, responses={200: EVENTS_RESPONSE})
    def get(self, request: Request, run_id: UUID) -> StreamingHttpResponse:
        """The run's state, then its status, progress and output events; ends after its final status."""
        last_event_id = _last_event_id(request)
        if selectors.run_get_for_user(user=request.user, run_id=run_id) is None:
            raise NotFound("Run not found.")
        return event_stream_response(RunStream(run_id, last_event_id))


class SessionEventsApi(_EventStreamApi):
    @extend_schema(parameters=EVENTS_PARAMETERS, responses={200: EVENTS_RESPONSE})
    def get(self, request: Request, session_id: UUID) -> StreamingHttpResponse:
        """The session's unfinished runs' states, then the events of every run of the session."""
        last_event_id = _last_event_id(request)
        if session_get_for_user(user=request.user, session_id=session_id) is None:
            raise NotFound("Session not found.")
        return event_stream_response(SessionStream(session_id, last_event_id))
