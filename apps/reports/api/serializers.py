from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.reports.compare import GOALS, MAX_COMPARE_RUNS
from apps.reports.exports import CSV_TABLES, FORMATS
from apps.reports.selectors import SCOPE_TYPES


class ExportOptionsSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=FORMATS, default="json")
    table = serializers.ChoiceField(
        choices=CSV_TABLES, required=False, help_text="csv only: one row per run (default) or per RD point."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "table" in attrs and attrs["format"] != "csv":
            raise serializers.ValidationError({"table": ["Only a csv export has tables."]})
        return attrs


class ExportInputSerializer(ExportOptionsSerializer):
    run = serializers.UUIDField(required=False)
    trace = serializers.UUIDField(required=False)
    session = serializers.UUIDField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [name for name in SCOPE_TYPES if name in attrs]
        if len(given) != 1:
            raise serializers.ValidationError(
                {"non_field_errors": ["Give exactly one of run, trace or session."]}
            )
        return super().validate(attrs)


class RunCompareInputSerializer(serializers.Serializer):
    runs = serializers.ListField(child=serializers.UUIDField(), max_length=MAX_COMPARE_RUNS)
    metric = serializers.RegexField(
        r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        required=False,
        help_text="duration_seconds, distance, distortion, rate, confidence or a numeric result field; "
        "by default the kind's own metric (fgw: distance, rd_sweep: distortion), else duration_seconds.",
    )
    goal = serializers.ChoiceField(
        choices=GOALS, required=False, help_text="min (default; max for confidence, accuracy, score)."
    )
