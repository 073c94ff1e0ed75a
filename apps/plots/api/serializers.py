from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.plots.models import PlotFormat


class PlotQuerySerializer(serializers.Serializer):
    run = serializers.UUIDField(required=False, help_text="An rd_sweep run: its curve.")
    session = serializers.UUIDField(required=False, help_text="A session: its sweeps' curves, or its runs.")
    format = serializers.ChoiceField(choices=PlotFormat.choices, default=PlotFormat.SVG)


class RDPlotQuerySerializer(PlotQuerySerializer):
    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("run" in attrs) == ("session" in attrs):
            raise serializers.ValidationError("Give exactly one of `run` or `session`.")
        return attrs


class DurationsPlotQuerySerializer(PlotQuerySerializer):
    session = serializers.UUIDField(help_text="A session: the durations of its finished runs, by kind.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "run" in attrs:
            raise serializers.ValidationError({"run": ["Durations are drawn per session: give `session`."]})
        return attrs


class PlotRenderingOutputSerializer(serializers.Serializer):
    status = serializers.CharField(help_text='"rendering": a worker is drawing it; ask again.')
    retry_after = serializers.IntegerField(help_text="Seconds (the Retry-After header says the same).")
