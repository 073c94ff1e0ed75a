from __future__ import annotations

from dataclasses import asdict
from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import is_admin, is_reviewer
from apps.audit.selectors import audit_list
from apps.audit.services import audit_verify
from apps.core.exceptions import NotFound, PermissionDenied
from apps.governance import selectors, services
from apps.governance.api.serializers import (
    AuditEntryOutputSerializer,
    ChainVerifyOutputSerializer,
    FlagInputSerializer,
    FlagOutputSerializer,
    PolicyCreateInputSerializer,
    PolicyOutputSerializer,
    PolicySettingsSerializer,
    QueueFilterSerializer,
    ReviewDecisionInputSerializer,
    ReviewOutputSerializer,
    ScanInputSerializer,
)
from apps.governance.policy import decide
from apps.governance.scanning import scan_value
from apps.policies import selectors as policy_selectors
from apps.policies import services as policy_services
from apps.sessions.selectors import session_get_for_user
from apps.traces.api.serializers import TraceOutputSerializer


def _require_reviewer(request: Request) -> None:
    if not is_reviewer(request.user):
        raise PermissionDenied("Only reviewers and admins may do this.")


def _require_admin(request: Request) -> None:
    if not is_admin(request.user):
        raise PermissionDenied("Only admins may do this.")


def _policy_or_404(policy_id: UUID) -> Any:
    policy = policy_selectors.policy_get(policy_id=policy_id)
    if policy is None:
        raise NotFound("Policy not found.")
    return policy


class PolicyListCreateApi(ListAPIView):
    """Policies are readable by every user (sessions are bound to them); reviewers and admins write."""

    serializer_class = PolicyOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return policy_selectors.policy_list().prefetch_related("versions")

    @extend_schema(request=PolicyCreateInputSerializer, responses={201: PolicyOutputSerializer})
    def post(self, request: Request) -> Response:
        data = PolicyCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        policy = policy_services.policy_create(user=request.user, **data.validated_data)
        return Response(PolicyOutputSerializer(policy).data, status=status.HTTP_201_CREATED)


class PolicyDetailApi(APIView):
    @extend_schema(responses={200: PolicyOutputSerializer})
    def get(self, request: Request, policy_id: UUID) -> Response:
        return Response(PolicyOutputSerializer(_policy_or_404(policy_id)).data)

    @extend_schema(request=PolicySettingsSerializer, responses={200: PolicyOutputSerializer})
    def patch(self, request: Request, policy_id: UUID) -> Response:
        """Edit the draft (started from the active version when there is none);
        approved versions never change."""
        data = PolicySettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        policy_services.policy_edit(
            user=request.user, policy_id=policy_id, settings=dict(data.validated_data)
        )
        return Response(PolicyOutputSerializer(_policy_or_404(policy_id)).data)


class PolicyApproveApi(APIView):
    @extend_schema(request=None, responses={200: PolicyOutputSerializer})
    def post(self, request: Request, policy_id: UUID) -> Response:
        policy_services.policy_approve(user=request.user, policy_id=policy_id)
        return Response(PolicyOutputSerializer(_policy_or_404(policy_id)).data)


class PolicyActivateApi(APIView):
    @extend_schema(request=None, responses={200: PolicyOutputSerializer})
    def post(self, request: Request, policy_id: UUID, number: int) -> Response:
        policy_services.policy_activate(user=request.user, policy_id=policy_id, number=number)
        return Response(PolicyOutputSerializer(_policy_or_404(policy_id)).data)


class FlagApi(APIView):
    @extend_schema(request=FlagInputSerializer, responses={201: FlagOutputSerializer})
    def post(self, request: Request) -> Response:
        data = FlagInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        flag = services.flag_raise(
            user=request.user,
            trace_id=values["trace"],
            flag_type=values["flag"],
            severity=values["severity"],
            reason=values["reason"],
        )
        return Response(FlagOutputSerializer(flag).data, status=status.HTTP_201_CREATED)


class ScanApi(APIView):
    """What the detectors find in a text and what the policy would decide, before submitting."""

    @extend_schema(request=ScanInputSerializer, responses={200: dict})
    def post(self, request: Request) -> Response:
        data = ScanInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if "session" in values:
            session = session_get_for_user(user=request.user, session_id=values["session"])
            if session is None:
                raise NotFound("Session not found.")
            policy = session.policy
        else:
            policy = policy_services.policy_resolve(None)
        version = policy.active_version
        findings = scan_value(values["text"], path="text", source="input")
        decision = decide(findings, version, inputs=True)
        verdict = "block" if decision.block else (decision.review.value if decision.review else "allow")
        body = {
            "findings": findings,
            "verdict": verdict,
            "reason": decision.reason,
            "policy": {"id": str(policy.pk), "name": policy.name, "version": version.number},
        }
        return Response(body)


class StatsApi(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        _require_reviewer(request)
        return Response(selectors.governance_stats())


class QueueApi(ListAPIView):
    serializer_class = ReviewOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        _require_reviewer(self.request)
        filters = QueueFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        values = filters.validated_data
        return selectors.review_queue(
            state=values.get("state"),
            flag_type=values.get("flag"),
            band=values.get("band"),
            session_id=values.get("session"),
            policy_id=values.get("policy"),
            detector=values.get("detector"),
            search=values.get("q"),
        )


class ReviewDecisionApi(APIView):
    decide = staticmethod(services.review_release)

    @extend_schema(request=ReviewDecisionInputSerializer, responses={200: ReviewOutputSerializer})
    def post(self, request: Request, trace_id: UUID) -> Response:
        data = ReviewDecisionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        review = type(self).decide(user=request.user, trace_id=trace_id, note=data.validated_data["note"])
        return Response(ReviewOutputSerializer(review).data)


class ReleaseApi(ReviewDecisionApi):
    decide = staticmethod(services.review_release)


class RejectApi(ReviewDecisionApi):
    decide = staticmethod(services.review_reject)


class AuditListApi(ListAPIView):
    serializer_class = AuditEntryOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        _require_admin(self.request)
        return audit_list(action=self.request.query_params.get("action"))


class AuditVerifyApi(APIView):
    @extend_schema(responses={200: ChainVerifyOutputSerializer})
    def get(self, request: Request) -> Response:
        _require_admin(request)
        return Response(ChainVerifyOutputSerializer(asdict(audit_verify())).data)


class TraceFlagsApi(ListAPIView):
    serializer_class = FlagOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        trace = selectors.trace_for_governance(user=self.request.user, trace_id=self.kwargs["trace_id"])
        if trace is None:
            raise NotFound("Trace not found.")
        return selectors.flags_for_trace(trace=trace)


class TraceMergeApi(APIView):
    @extend_schema(request=None, responses={200: TraceOutputSerializer})
    def post(self, request: Request, trace_id: UUID) -> Response:
        trace = services.trace_merge_governed(user=request.user, trace_id=trace_id)
        return Response(TraceOutputSerializer(trace).data)
