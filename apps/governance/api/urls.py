from __future__ import annotations

from django.urls import path

from apps.governance.api import views

urlpatterns = [
    path("governance/policies", views.PolicyListCreateApi.as_view(), name="policy-list"),
    path("governance/policies/<uuid:policy_id>", views.PolicyDetailApi.as_view(), name="policy-detail"),
    path(
        "governance/policies/<uuid:policy_id>/approve",
        views.PolicyApproveApi.as_view(),
        name="policy-approve",
    ),
    path(
        "governance/policies/<uuid:policy_id>/versions/<int:number>/activate",
        views.PolicyActivateApi.as_view(),
        name="policy-activate",
    ),
    path("governance/flag", views.FlagApi.as_view(), name="governance-flag"),
    path("governance/scan", views.ScanApi.as_view(), name="governance-scan"),
    path("governance/stats", views.StatsApi.as_view(), name="governance-stats"),
    path("governance/queue", views.QueueApi.as_view(), name="governance-queue"),
    path("governance/traces/<uuid:trace_id>/release", views.ReleaseApi.as_view(), name="governance-release"),
    path("governance/traces/<uuid:trace_id>/reject", views.RejectApi.as_view(), name="governance-reject"),
    path("governance/audit", views.AuditListApi.as_view(), name="governance-audit"),
    path("governance/audit/verify", views.AuditVerifyApi.as_view(), name="governance-audit-verify"),
    path("traces/<uuid:trace_id>/flags", views.TraceFlagsApi.as_view(), name="trace-flags"),
    path("traces/<uuid:trace_id>/merge", views.TraceMergeApi.as_view(), name="trace-merge"),
]
