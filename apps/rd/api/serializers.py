from __future__ import annotations

from rest_framework import serializers

from apps.rd.models import RDKnee, RDPoint


class RDQuerySerializer(serializers.Serializer):
    session = serializers.UUIDField()


class RDPointOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = RDPoint
        fields = ["level", "rate", "distortion"]


class RDKneeOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = RDKnee
        fields = ["level", "rate", "distortion", "points", "updated_at"]


class RDCurveOutputSerializer(serializers.Serializer):
    session = serializers.UUIDField()
    points = RDPointOutputSerializer(many=True)
    knee = RDKneeOutputSerializer(allow_null=True)
