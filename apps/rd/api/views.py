from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.rd import selectors
from apps.rd.api.serializers import RDCurveOutputSerializer, RDKneeOutputSerializer, RDQuerySerializer
from apps.sessions.models import Session
from apps.sessions.selectors import session_get_for_user

SESSION_PARAMETER = OpenApiParameter("session", str, required=True, description="Session id")


def _session(request: Request) -> Session:
    query = RDQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    session = session_get_for_user(user=request.user, session_id=query.validated_data["session"])
    if session is None:
        raise NotFound("Session not found.")
    return session


class RDCurveApi(APIView):
    @extend_schema(parameters=[SESSION_PARAMETER], responses={200: RDCurveOutputSerializer})
    def get(self, request: Request) -> Response:
        session = _session(request)
        body = {
            "session": session.pk,
            "points": selectors.rd_curve_for_session(session=session),
            "knee": selectors.rd_knee_for_session(session=session),
        }
        return Response(RDCurveOutputSerializer(body).data)


class RDKneeApi(APIView):
    @extend_schema(parameters=[SESSION_PARAMETER], responses={200: RDKneeOutputSerializer})
    def get(self, request: Request) -> Response:
        knee = selectors.rd_knee_for_session(session=_session(request))
        if knee is None:
            raise NotFound(
                "No knee yet: the session's curve needs at least 3 points (submit an rd_sweep run)."
            )
        return Response(RDKneeOutputSerializer(knee).data)
