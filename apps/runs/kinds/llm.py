"""`llm`: a chat with a remote model (OpenAI-compatible or Anthropic provider, LLM_PROVIDERS),
with function calling, on the `io` queue (workers/llm).

    {"provider", "model", "messages": [{"role", "content"}], "tools": [<tool names>],
     "max_tokens", "use_session_context": true}
    -> {"message": {"role", "content"}, "tool_calls": [{"name", "arguments", "result", "run"}],
        "usage": {"input_tokens", "output_tokens"}, "provider", "model"}

`tools` are names from GET /api/v1/llm/tools; a tool that is a run kind runs as a child run of
this one (`run` in tool_calls). With `use_session_context` the session's earlier exchanges with
the same provider model come first, and this run's messages (other than system ones) and its
reply are added to them when it succeeds (in run_complete's transaction and attempt fence).
The session's token usage (apps.llm.models.LlmUsage) is added to by the worker after each model
call, so a run that fails still counts what it spent.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from rest_framework import serializers

from apps.conversations.models import TurnRole
from apps.conversations.services import conversation_append, conversation_trim
from apps.core.queues import Queue
from apps.llm.history import conversation_key, estimate_tokens
from apps.llm.providers import provider_get, providers_all
from apps.llm.tools import tool_get, tool_names
from apps.runs.kinds import RunKind, register
from apps.runs.kinds._strict import StrictBooleanField, StrictIntegerField, StrictPayloadSerializer
from apps.runs.models import Run
from apps.sessions.models import Session

ROLES = ("system", "user", "assistant")


class StrictStringField(serializers.CharField):
    """A JSON string kept as sent (no trimming)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"Must be a string, not {type(data).__name__}.")
        if "\x00" in data:
            raise serializers.ValidationError("Must not contain NUL characters.")
        return super().to_internal_value(data)


class LlmPayloadSerializer(StrictPayloadSerializer):
    provider = StrictStringField(max_length=100)
    model = StrictStringField(max_length=200)
    messages = serializers.JSONField()
    tools = serializers.JSONField(required=False, default=list)
    max_tokens = StrictIntegerField(required=False, min_value=1)
    use_session_context = StrictBooleanField(required=False, default=False)

    def validate_messages(self, value: Any) -> list[dict[str, str]]:
        if not isinstance(value, list) or not value:
            raise serializers.ValidationError('Must be a non-empty list of {"role", "content"} objects.')
        if len(value) > settings.LLM_MAX_MESSAGES:
            raise serializers.ValidationError(
                f"At most {settings.LLM_MAX_MESSAGES} messages (LLM_MAX_MESSAGES)."
            )
        total = 0
        for index, message in enumerate(value):
            if not isinstance(message, dict) or set(message) != {"role", "content"}:
                raise serializers.ValidationError(f'Message {index} must be exactly {{"role", "content"}}.')
            if message["role"] not in ROLES:
                raise serializers.ValidationError(f"Message {index}: role must be one of {', '.join(ROLES)}.")
            content = message["content"]
            if not isinstance(content, str) or not content or "\x00" in content:
                raise serializers.ValidationError(f"Message {index}: content must be a non-empty string.")
            total += len(content)
        if total > settings.LLM_MAX_INPUT_CHARS:
            raise serializers.ValidationError(
                f"Messages hold {total} characters; the limit is {settings.LLM_MAX_INPUT_CHARS} "
                "(LLM_MAX_INPUT_CHARS)."
            )
        if all(message["role"] == "system" for message in value):
            raise serializers.ValidationError("At least one message must be a user or assistant message.")
        return value

    def validate_tools(self, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
            raise serializers.ValidationError("Must be a list of tool names (GET /api/v1/llm/tools).")
        unknown = [name for name in value if tool_get(name) is None]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown tool(s) {', '.join(unknown)}; known: {', '.join(tool_names())}."
            )
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Each tool at most once.")
        return value

    def validate_max_tokens(self, value: int) -> int:
        if value > settings.LLM_MAX_OUTPUT_TOKENS:
            raise serializers.ValidationError(
                f"At most {settings.LLM_MAX_OUTPUT_TOKENS} (LLM_MAX_OUTPUT_TOKENS)."
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        provider = provider_get(attrs["provider"])
        if provider is None:
            known = ", ".join(sorted(providers_all())) or "none is configured (LLM_PROVIDERS)"
            raise serializers.ValidationError(
                {"provider": [f"Unknown provider {attrs['provider']!r}; known: {known}."]}
            )
        if attrs["model"] not in provider.models:
            raise serializers.ValidationError(
                {
                    "model": [
                        f"Model {attrs['model']!r} is not allowed on {provider.name}; "
                        f"allowed: {', '.join(provider.models)}."
                    ]
                }
            )
        attrs.setdefault("max_tokens", min(settings.LLM_DEFAULT_MAX_TOKENS, settings.LLM_MAX_OUTPUT_TOKENS))
        return attrs


def record_exchange(run: Run, result: Any) -> None:
    """With use_session_context, the conversation's new turns."""
    payload = run.payload
    if not isinstance(result, dict) or not payload.get("use_session_context"):
        return
    key = conversation_key(payload["provider"], payload["model"])
    reply = str((result.get("message") or {}).get("content") or "")
    turns = [m for m in payload["messages"] if m["role"] != "system"] + [
        {"role": "assistant", "content": reply}
    ]
    with transaction.atomic():
        # one writer per session's conversations at a time, as conversation_record_exchange does
        Session.objects.select_for_update().filter(pk=run.session_id).first()
        for turn in turns:
            if turn["content"]:
                conversation_append(
                    session=run.session,
                    key=key,
                    role=TurnRole(turn["role"]),
                    content=turn["content"],
                    tokens=estimate_tokens(turn["content"]),
                    run_id=run.pk,
                )
        conversation_trim(session=run.session, key=key, max_tokens=settings.CONVERSATION_MAX_TOKENS)


register(
    RunKind(
        name="llm",
        payload_serializer=LlmPayloadSerializer,
        queue=Queue.IO,
        # the worker bounds each model call (timeouts, retries) and each tool run itself: a
        # threads pool, which the io queue's workers use, does not enforce time limits
        time_limit_seconds=3600,
        description="A chat with a remote LLM provider's model, with tools that run as child runs.",
        on_success=record_exchange,
        # model-call failures are retried inside the run (LLM_MAX_RETRIES_PER_RUN); a run is
        # tried again only for the platform's own transient faults
        retry_on=("OperationalError", "InterfaceError"),
    )
)
