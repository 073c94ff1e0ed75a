from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.validators import StrictUUIDField
from apps.governance.models import Flag, TraceReview
from apps.policies.models import Policy, PolicyVersion
from apps.policies.presets import FLAG_TYPES, SETTING_NAMES


class PolicyVersionOutputSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, allow_null=True)
    approved_by = serializers.CharField(source="approved_by.username", default=None, allow_null=True)

    class Meta:
        model = PolicyVersion
        fields = ["number", "state", "author", "approved_by", "approved_at", "created_at", *SETTING_NAMES]


class PolicyOutputSerializer(serializers.ModelSerializer):
    active_version = PolicyVersionOutputSerializer(allow_null=True)
    versions = serializers.SerializerMethodField()

    class Meta:
        model = Policy
        fields = ["id", "name", "description", "active_version", "versions", "created_at"]

    def get_versions(self, policy: Policy) -> list[dict[str, Any]]:
        return PolicyVersionOutputSerializer(policy.versions.order_by("-number"), many=True).data


class PolicySettingsSerializer(serializers.Serializer):
    """Types only; the values' domain rules are the service's (apps.policies.services)."""

    auto_quarantine = serializers.BooleanField(required=False)
    quarantine_severity = serializers.IntegerField(required=False)
    block_severity = serializers.IntegerField(required=False)
    merge_max_severity = serializers.IntegerField(required=False)
    blocked_flags = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, max_length=10
    )
    require_human_review = serializers.BooleanField(required=False)
    max_anomaly_severity = serializers.IntegerField(required=False)
    scan_outputs = serializers.BooleanField(required=False)
    scan_inputs_model = serializers.BooleanField(required=False)


class PolicyCreateInputSerializer(serializers.Serializer):
    name = serializers.RegexField(r"^[A-Za-z0-9_.-]{1,100}$")
    description = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)
    base = serializers.CharField(max_length=100, default="default", help_text="A preset name or a policy id.")
    settings = PolicySettingsSerializer(required=False, default=dict)


class FlagInputSerializer(serializers.Serializer):
    trace = StrictUUIDField()
    flag = serializers.ChoiceField(choices=FLAG_TYPES)
    severity = serializers.IntegerField(min_value=1, max_value=10)
    reason = serializers.CharField(max_length=2000)


class FlagOutputSerializer(serializers.ModelSerializer):
    policy_version = serializers.CharField(source="policy_version.label")
    raised_by = serializers.CharField(source="raised_by.username", default=None, allow_null=True)
    flag = serializers.CharField(source="type")

    class Meta:
        model = Flag
        fields = [
            "id",
            "trace",
            "flag",
            "severity",
            "risk",
            "reason",
            "detector",
            "source",
            "span",
            "auto_detected",
            "raised_by",
            "policy_version",
            "state",
            "created_at",
        ]


class ScanInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=100_000, trim_whitespace=False)
    session = StrictUUIDField(
        required=False, help_text="Judge with this session's policy (default: the default policy)."
    )


class ReviewDecisionInputSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=4000)


class ReviewOutputSerializer(serializers.ModelSerializer):
    session = serializers.UUIDField(source="trace.session_id")
    run = serializers.UUIDField(source="trace.run_id", allow_null=True)
    run_status = serializers.CharField(source="trace.run.status", default=None, allow_null=True)
    policy_version = serializers.CharField(source="policy_version.label")
    decided_by = serializers.CharField(source="decided_by.username", default=None, allow_null=True)

    class Meta:
        model = TraceReview
        fields = [
            "trace",
            "session",
            "run",
            "run_status",
            "state",
            "severity",
            "reason",
            "policy_version",
            "opened_at",
            "decided_by",
            "decided_at",
            "note",
        ]


class QueueFilterSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=["quarantined", "pending", "released", "rejected"], required=False
    )
    flag = serializers.ChoiceField(choices=FLAG_TYPES, required=False)
    band = serializers.ChoiceField(choices=["low", "medium", "high", "critical"], required=False)
    session = StrictUUIDField(required=False)
    policy = StrictUUIDField(required=False)
    detector = serializers.CharField(max_length=100, required=False)
    q = serializers.CharField(max_length=200, required=False)


class AuditEntryOutputSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    actor = serializers.CharField()
    action = serializers.CharField()
    data = serializers.JSONField()
    created_at = serializers.DateTimeField()
    prev_hash = serializers.CharField()
    hash = serializers.CharField()


class ChainVerifyOutputSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    broken_at = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_null=True)
    entries = serializers.IntegerField()
