from __future__ import annotations

from rest_framework import serializers

from apps.core.validators import BoundedJSONField, StrictUUIDField
from apps.traces.models import ProvenanceEntry, Trace

MAX_PROVENANCE_DATA_BYTES = 64 * 1024


class TraceCreateInputSerializer(serializers.Serializer):
    session = StrictUUIDField()
    inputs = BoundedJSONField(required=False, default=dict)
    outputs = BoundedJSONField(required=False, default=dict)
    metadata = BoundedJSONField(required=False, default=dict)


class TraceOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Trace
        fields = [
            "id",
            "session",
            "run",
            "inputs",
            "outputs",
            "metadata",
            "merged",
            "entry_count",
            "head_hash",
            "created_at",
            "updated_at",
        ]


class ProvenanceAppendInputSerializer(serializers.Serializer):
    action = serializers.RegexField(r"^[a-z][a-z0-9_.:-]*$", max_length=100)
    data = BoundedJSONField(required=False, default=dict, max_bytes=MAX_PROVENANCE_DATA_BYTES)


class ProvenanceEntryOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProvenanceEntry
        fields = ["seq", "actor", "action", "data", "created_at", "prev_hash", "hash"]


class TraceVerifyOutputSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    broken_at = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_null=True)
    entries = serializers.IntegerField()
