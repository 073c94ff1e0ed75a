"""One model call through a provider's official client (`openai`, `anthropic`), in the run's
provider-neutral message form, streamed or not, as a ModelReply.

Neutral messages:
    {"role": "system" | "user", "content": str}
    {"role": "assistant", "content": str, "tool_calls": [ToolCall, ...]}
    {"role": "tool", "call_id": str, "name": str, "content": str (JSON), "is_error": bool}

The clients' own retries are off (max_retries=0): the loop retries itself, so each retry is
counted against the run's cap, waits as Retry-After asks, stays cancellable, and is traced.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai

from apps.llm.providers import Provider

NO_KEY = "no-key"  # sent when a provider needs none (a local Ollama): both clients insist on one
RETRYABLE_STATUS = (408, 409, 429)


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    # JSON text from OpenAI-style servers, an object from Anthropic's
    arguments: str | dict[str, Any]


@dataclass
class ModelReply:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None


class ProviderError(Exception):
    """A model call that failed for good: the provider refused it (4xx), or its retries ran out.
    The message never holds the API key (redact)."""


class RetryableProviderError(ProviderError):
    """Worth another try (429, 5xx, timeouts, connection errors); `retry_after` is what the
    provider asked for, in seconds, if it did."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def redact(text: str, secret: str) -> str:
    return text.replace(secret, "[redacted]") if secret and secret != NO_KEY else text


def retry_after_seconds(headers: Any) -> float | None:
    """Retry-After (seconds or an HTTP date) or retry-after-ms, in seconds."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return None if parsed is None else max(0.0, email.utils.mktime_tz(parsed) - time.time())


def _classified(exc: Exception, provider: Provider, secret: str) -> ProviderError:
    """The provider error an SDK exception stands for, its message redacted."""
    status = getattr(exc, "status_code", None)
    body = redact(str(getattr(exc, "message", "") or exc), secret)[:500]
    if status is not None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
        message = f"{provider.name} answered HTTP {status}: {body}"
        if status in RETRYABLE_STATUS or status >= 500:
            return RetryableProviderError(message, status=status, retry_after=retry_after_seconds(headers))
        return ProviderError(message)
    if isinstance(exc, openai.APITimeoutError | anthropic.APITimeoutError):
        return RetryableProviderError(f"{provider.name} timed out after {provider.timeout_seconds:g}s")
    return RetryableProviderError(f"could not reach {provider.name}: {type(exc).__name__}: {body}")


SDK_ERRORS = (openai.APIError, anthropic.APIError, OSError)


class ProviderClient:
    """A provider's official client with the key from its variable (read now, on the worker)."""

    def __init__(self, provider: Provider, api_key: str) -> None:
        self.provider = provider
        self._key = api_key or NO_KEY

    def call(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        max_tokens: int,
        on_text: Callable[[str], None],
    ) -> ModelReply:
        """One model call; `on_text` gets each piece of streamed text (and may raise to stop)."""
        try:
            if self.provider.api == "openai":
                return self._openai(model, messages, tools, max_tokens, on_text)
            return self._anthropic(model, messages, tools, max_tokens, on_text)
        except ProviderError:
            raise
        except SDK_ERRORS as exc:
            raise _classified(exc, self.provider, self._key) from None
        except Exception as exc:
            # the HTTP layer's own errors (a connection dropped mid-stream) surface unwrapped
            if type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "h11"):
                raise _classified(exc, self.provider, self._key) from None
            raise

    # --- OpenAI chat completions ------------------------------------------------------------

    def _openai(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        max_tokens: int,
        on_text: Callable[[str], None],
    ) -> ModelReply:
        client = openai.OpenAI(
            api_key=self._key,
            base_url=self.provider.base_url,
            timeout=self.provider.timeout_seconds,
            max_retries=0,
        )
        request: dict[str, Any] = {
            "model": model,
            "messages": openai_messages(messages),
            "max_tokens": max_tokens,
        }
        if tools:
            request["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t["name"],
                        "description": t["description"],
                        "parameters": t["parameters"],
                    },
                }
                for t in tools
            ]
        with client:
            if not self.provider.stream:
                return _openai_reply(client.chat.completions.create(**request))
            stream = client.chat.completions.create(
                **request, stream=True, stream_options={"include_usage": True}
            )
            with stream:
                return _openai_streamed(stream, on_text)

    # --- Anthropic Messages -------------------------------------------------------------------

    def _anthropic(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        max_tokens: int,
        on_text: Callable[[str], None],
    ) -> ModelReply:
        client = anthropic.Anthropic(
            api_key=self._key,
            base_url=self.provider.base_url,
            timeout=self.provider.timeout_seconds,
            max_retries=0,
        )
        system, converted = anthropic_messages(messages)
        request: dict[str, Any] = {"model": model, "messages": converted, "max_tokens": max_tokens}
        if system:
            request["system"] = system
        if tools:
            request["tools"] = [
                {"name": t["name"], "description": t["description"], "input_schema": t["parameters"]}
                for t in tools
            ]
        with client:
            if not self.provider.stream:
                return _anthropic_reply(client.messages.create(**request))
            stream = client.messages.create(**request, stream=True)
            with stream:
                return _anthropic_streamed(stream, on_text)


def _arguments_text(arguments: str | dict[str, Any]) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _arguments_object(arguments: str | dict[str, Any]) -> Any:
    if isinstance(arguments, dict):
        return arguments
    try:
        return json.loads(arguments)
    except ValueError:
        return {}


def openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "tool":
            out.append({"role": "tool", "tool_call_id": message["call_id"], "content": message["content"]})
        elif role == "assistant" and message.get("tool_calls"):
            out.append(
                {
                    "role": "assistant",
                    "content": message["content"] or None,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": _arguments_text(c.arguments)},
                        }
                        for c in message["tool_calls"]
                    ],
                }
            )
        else:
            out.append({"role": role, "content": message["content"]})
    return out


def anthropic_messages(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """(system prompt, messages): system messages join the `system` parameter; a round's tool
    results go back together in one user message of tool_result blocks."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "system":
            continue
        if role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message["call_id"],
                "content": message["content"],
                "is_error": bool(message.get("is_error")),
            }
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif role == "assistant" and message.get("tool_calls"):
            blocks: list[dict[str, Any]] = (
                [{"type": "text", "text": message["content"]}] if message["content"] else []
            )
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": _arguments_object(c.arguments)}
                for c in message["tool_calls"]
            ]
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": role, "content": message["content"]})
    return system, out


def _openai_reply(completion: Any) -> ModelReply:
    reply = ModelReply()
    if completion.usage is not None:
        reply.input_tokens = completion.usage.prompt_tokens or 0
        reply.output_tokens = completion.usage.completion_tokens or 0
    if completion.choices:
        choice = completion.choices[0]
        reply.finish_reason = choice.finish_reason
        reply.text = choice.message.content or ""
        for call in choice.message.tool_calls or []:
            reply.tool_calls.append(ToolCall(call.id, call.function.name, call.function.arguments or ""))
    return reply


def _openai_streamed(stream: Any, on_text: Callable[[str], None]) -> ModelReply:
    reply = ModelReply()
    parts: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    for chunk in stream:
        if getattr(chunk, "usage", None) is not None:
            reply.input_tokens = chunk.usage.prompt_tokens or 0
            reply.output_tokens = chunk.usage.completion_tokens or 0
        for choice in chunk.choices or []:
            delta = choice.delta
            if delta is not None and delta.content:
                parts.append(delta.content)
                on_text(delta.content)
            for piece in (delta.tool_calls or []) if delta is not None else []:
                call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                call["id"] = piece.id or call["id"]
                if piece.function is not None:
                    call["name"] += piece.function.name or ""
                    call["arguments"] += piece.function.arguments or ""
            if choice.finish_reason:
                reply.finish_reason = choice.finish_reason
    reply.text = "".join(parts)
    reply.tool_calls = [
        ToolCall(call["id"] or f"call_{index}", call["name"], call["arguments"])
        for index, call in sorted(calls.items())
    ]
    return reply


def _anthropic_reply(message: Any) -> ModelReply:
    reply = ModelReply(finish_reason=message.stop_reason)
    if message.usage is not None:
        reply.input_tokens = message.usage.input_tokens or 0
        reply.output_tokens = message.usage.output_tokens or 0
    texts = []
    for block in message.content or []:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            reply.tool_calls.append(ToolCall(block.id, block.name, dict(block.input or {})))
    reply.text = "".join(texts)
    return reply


def _anthropic_streamed(stream: Any, on_text: Callable[[str], None]) -> ModelReply:
    reply = ModelReply()
    texts: list[str] = []
    uses: dict[int, dict[str, Any]] = {}
    for event in stream:
        kind = event.type
        if kind == "message_start":
            usage = event.message.usage
            if usage is not None:
                reply.input_tokens = usage.input_tokens or 0
                reply.output_tokens = usage.output_tokens or 0
        elif kind == "content_block_start" and event.content_block.type == "tool_use":
            block = event.content_block
            uses[event.index] = {"id": block.id, "name": block.name, "json": ""}
        elif kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                texts.append(delta.text)
                on_text(delta.text)
            elif delta.type == "input_json_delta" and event.index in uses:
                uses[event.index]["json"] += delta.partial_json
        elif kind == "message_delta":
            reply.finish_reason = event.delta.stop_reason or reply.finish_reason
            if event.usage is not None and event.usage.output_tokens is not None:
                reply.output_tokens = event.usage.output_tokens
    reply.text = "".join(texts)
    reply.tool_calls = [
        ToolCall(use["id"], use["name"], use["json"] or "{}") for _, use in sorted(uses.items())
    ]
    return reply
