from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.validators import StrictUUIDField
from apps.rd.models import RDCurve, RDPoint


class RDQuerySerializer(serializers.Serializer):
    run = StrictUUIDField(required=False, help_text="One sweep's curve.")
    session = StrictUUIDField(required=False, help_text="Every sweep of the session, one curve each.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("run" in attrs) == ("session" in attrs):
            raise serializers.ValidationError("Give exactly one of `run` or `session`.")
        return attrs


class RDPointOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = RDPoint
        fields = ["level", "rate", "distortion"]


class RDKneeOutputSerializer(serializers.Serializer):
    level = serializers.IntegerField()
    rate = serializers.FloatField()
    distortion = serializers.FloatField()


class RDCurveOutputSerializer(serializers.ModelSerializer):
    points = RDPointOutputSerializer(many=True)
    knee = RDKneeOutputSerializer(allow_null=True)

    class Meta:
        model = RDCurve
        fields = ["run", "session", "nodes", "points", "knee", "created_at"]


class RDSessionCurvesOutputSerializer(serializers.Serializer):
    session = serializers.UUIDField()
    curves = RDCurveOutputSerializer(many=True)


class RDKneeOfRunOutputSerializer(serializers.Serializer):
    run = serializers.UUIDField()
    session = serializers.UUIDField()
    nodes = serializers.IntegerField()
    knee = RDKneeOutputSerializer()
