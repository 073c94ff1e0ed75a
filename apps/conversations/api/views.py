from __future__ import annotations

from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.conversations import selectors, services
from apps.conversations.api.serializers import ConversationClearInputSerializer, ConversationOutputSerializer


class SessionConversationApi(APIView):
    """A session's generation context: what its `generate` runs continue from."""

    @extend_schema(
        responses={
            200: inline_serializer(
                "SessionConversations", {"conversations": ConversationOutputSerializer(many=True)}
            )
        }
    )
    def get(self, request: Request, session_id: UUID) -> Response:
        conversations = selectors.conversation_list_for_user(user=request.user, session_id=session_id)
        return Response({"conversations": ConversationOutputSerializer(conversations, many=True).data})

    @extend_schema(
        parameters=[OpenApiParameter("model", str, description="Only this model's conversation.")],
        responses={
            200: inline_serializer("ConversationCleared", {"removed_turns": serializers.IntegerField()})
        },
    )
    def delete(self, request: Request, session_id: UUID) -> Response:
        data = ConversationClearInputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        removed = services.conversation_clear(
            user=request.user, session_id=session_id, key=data.validated_data.get("model")
        )
        return Response({"removed_turns": removed}, status=status.HTTP_200_OK)
