from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.inference.selectors import model_list_with_workers


class ModelWorkerOutputSerializer(serializers.Serializer):
    hostname = serializers.CharField()
    queues = serializers.ListField(child=serializers.CharField())
    gpus = serializers.IntegerField()


class ModelOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    task = serializers.ChoiceField(choices=["embed", "classify", "generate"])
    device = serializers.CharField()
    max_batch_size = serializers.IntegerField(allow_null=True)
    max_length = serializers.IntegerField(allow_null=True)
    default = serializers.BooleanField()
    workers = ModelWorkerOutputSerializer(many=True)


class ModelListApi(APIView):
    """Registered models, their tasks, and which live workers can serve each."""

    @extend_schema(
        responses={200: inline_serializer("ModelList", {"models": ModelOutputSerializer(many=True)})}
    )
    def get(self, request: Request) -> Response:
        return Response({"models": ModelOutputSerializer(model_list_with_workers(), many=True).data})
