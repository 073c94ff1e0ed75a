from __future__ import annotations

from uuid import UUID

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.llm.providers import providers_all
from apps.llm.selectors import llm_usage_for_user
from apps.llm.tools import tool_get, tool_names


class ProviderOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    api = serializers.ChoiceField(choices=["openai", "anthropic"])
    base_url = serializers.CharField()
    models = serializers.ListField(child=serializers.CharField())


class ToolOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    parameters = serializers.JSONField()
    run_kind = serializers.CharField(allow_null=True)


class UsageOutputSerializer(serializers.Serializer):
    provider = serializers.CharField()
    model = serializers.CharField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    runs = serializers.IntegerField()
    updated_at = serializers.DateTimeField()


class LlmProviderListApi(APIView):
    """The remote LLM providers an `llm` run may name, with their model allow-lists."""

    @extend_schema(
        responses={
            200: inline_serializer("LlmProviderList", {"providers": ProviderOutputSerializer(many=True)})
        }
    )
    def get(self, request: Request) -> Response:
        providers = [provider.as_public() for provider in providers_all().values()]
        return Response({"providers": ProviderOutputSerializer(providers, many=True).data})


class LlmToolListApi(APIView):
    """The tools an `llm` run may offer its model (`payload.tools`), with their JSON schemas."""

    @extend_schema(
        responses={200: inline_serializer("LlmToolList", {"tools": ToolOutputSerializer(many=True)})}
    )
    def get(self, request: Request) -> Response:
        tools = [tool_get(name).as_public() for name in tool_names()]  # type: ignore[union-attr]
        return Response({"tools": ToolOutputSerializer(tools, many=True).data})


class SessionLlmUsageApi(APIView):
    """Tokens the session's `llm` runs have spent, by provider and model."""

    @extend_schema(
        responses={200: inline_serializer("SessionLlmUsage", {"usage": UsageOutputSerializer(many=True)})}
    )
    def get(self, request: Request, session_id: UUID) -> Response:
        usage = llm_usage_for_user(user=request.user, session_id=session_id)
        return Response({"usage": UsageOutputSerializer(usage, many=True).data})
