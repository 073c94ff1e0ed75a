from __future__ import annotations

from rest_framework import serializers

from apps.conversations.models import Conversation, Turn


class TurnOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Turn
        fields = ["role", "content", "tokens", "run_id", "created_at"]


class ConversationOutputSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="key")
    tokens = serializers.SerializerMethodField()
    turns = TurnOutputSerializer(many=True)

    class Meta:
        model = Conversation
        fields = ["model", "tokens", "turns", "updated_at"]

    def get_tokens(self, conversation: Conversation) -> int:
        return sum(turn.tokens for turn in conversation.turns.all())


class ConversationClearInputSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=200, required=False)
