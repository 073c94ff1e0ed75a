from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.exceptions import NotFound
from apps.rd import selectors
from apps.rd.api.serializers import (
    RDCurveOutputSerializer,
    RDKneeOfRunOutputSerializer,
    RDQuerySerializer,
    RDSessionCurvesOutputSerializer,
)
from apps.rd.models import RDCurve
from apps.sessions.selectors import session_get_for_user

RD_PARAMETERS = [
    OpenApiParameter("run", UUID, description="An rd_sweep run's id: that sweep. Give `run` or `session`."),
    OpenApiParameter("session", UUID, description="A session's id: each of its sweeps, newest first."),
]


def _query(request: Request) -> dict[str, Any]:
    query = RDQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


def _curve_of_run(request: Request, run_id: Any) -> RDCurve:
    curve = selectors.rd_curve_list_for_user(user=request.user, run_id=run_id).first()
    if curve is None:
        raise NotFound("No RD curve for this run: it is not a succeeded rd_sweep run of yours.")
    return curve


def _curves_of_session(request: Request, session_id: Any) -> list[RDCurve]:
    if session_get_for_user(user=request.user, session_id=session_id) is None:
        raise NotFound("Session not found.")
    return list(selectors.rd_curve_list_for_user(user=request.user, session_id=session_id))


class RDCurveApi(APIView):
    @extend_schema(
        parameters=RD_PARAMETERS,
        responses={
            200: PolymorphicProxySerializer(
                component_name="RDCurveResponse",
                serializers=[RDCurveOutputSerializer, RDSessionCurvesOutputSerializer],
                resource_type_field_name=None,
            )
        },
    )
    def get(self, request: Request) -> Response:
        query = _query(request)
        if "run" in query:
            return Response(RDCurveOutputSerializer(_curve_of_run(request, query["run"])).data)
        curves = _curves_of_session(request, query["session"])
        body = {"session": query["session"], "curves": curves}
        return Response(RDSessionCurvesOutputSerializer(body).data)


class RDKneeApi(APIView):
    @extend_schema(
        parameters=RD_PARAMETERS,
        responses={
            200: PolymorphicProxySerializer(
                component_name="RDKneeResponse",
                serializers=[RDKneeOfRunOutputSerializer, RDKneeOfRunOutputSerializer(many=True)],
                resource_type_field_name=None,
                many=False,
            )
        },
    )
    def get(self, request: Request) -> Response:
        """The knee of one sweep (`run`: an object), or of each sweep of a session that has one
        (`session`: a list)."""
        query = _query(request)
        if "run" in query:
            curve = _curve_of_run(request, query["run"])
            if curve.knee is None:
                raise NotFound("This sweep has no knee: a curve needs at least 3 points to have one.")
            return Response(_knee_body(curve))
        curves = [curve for curve in _curves_of_session(request, query["session"]) if curve.knee]
        return Response([_knee_body(curve) for curve in curves])


def _knee_body(curve: RDCurve) -> dict[str, Any]:
    return RDKneeOfRunOutputSerializer(
        {"run": curve.run_id, "session": curve.session_id, "nodes": curve.nodes, "knee": curve.knee}
    ).data
