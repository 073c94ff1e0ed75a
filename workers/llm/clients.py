"""One model call through a provider's official client (`openai`, `anthropic`), in the run's
provider-neutral message form, streamed or not, as a ModelReply. ProviderClient holds what both
API styles share (the client without its own retries, streamed text to the caller as it comes,
the reply and its usage put together by a ReplyBuilder, errors classified and redacted);
OpenAIClient and AnthropicClient hold only the request's form and how an answer reads.

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
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
from django.conf import settings

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


class ReplyBuilder:
    """A ModelReply put together from a provider's answer, whole or streamed in pieces: text
    (each piece to `on_text` as it arrives), tool calls (whole, or in pieces by index), usage
    and finish reason. Both API styles fill one; only how they read their answer differs."""

    def __init__(self, on_text: Callable[[str], None] | None = None) -> None:
        self.on_text = on_text
        self.texts: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.reply = ModelReply()

    def text(self, piece: str) -> None:
        self.texts.append(piece)
        if self.on_text is not None:
            self.on_text(piece)

    def tool_call(
        self, index: int, *, id: str = "", name: str = "", arguments: str | dict[str, Any] = ""
    ) -> None:
        """A tool call, or a piece of one: its id when given, its name and its arguments text
        appended (an arguments object, from a whole answer, is kept as it is)."""
        call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        call["id"] = id or call["id"]
        call["name"] += name
        call["arguments"] = arguments if isinstance(arguments, dict) else call["arguments"] + arguments

    def usage(self, *, input_tokens: int | None = None, output_tokens: int | None = None) -> None:
        if input_tokens is not None:
            self.reply.input_tokens = input_tokens
        if output_tokens is not None:
            self.reply.output_tokens = output_tokens

    def finish(self, reason: str | None) -> None:
        self.reply.finish_reason = reason or self.reply.finish_reason

    def build(self, *, no_arguments: str = "") -> ModelReply:
        """The reply; a call whose arguments never came gets `no_arguments`."""
        self.reply.text = "".join(self.texts)
        self.reply.tool_calls = [
            ToolCall(
                call["id"] or f"call_{index}",
                call["name"],
                no_arguments if call["arguments"] == "" else call["arguments"],
            )
            for index, call in sorted(self.calls.items())
        ]
        return self.reply


class ProviderClient(ABC):
    """One model call through a provider's official client, with the key from its variable
    (read on the worker): the client without its own retries, the answer streamed or whole
    into a ReplyBuilder, SDK errors classified and redacted. A subclass per API style holds
    what differs: the SDK, the request's form, and how an answer reads."""

    sdk: Callable[..., Any]
    timeout_type: Callable[..., Any]
    no_arguments = ""  # the arguments of a streamed call that sent none

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
            return self._call(self.request(model, messages, tools, max_tokens), on_text)
        except ProviderError:
            raise
        except SDK_ERRORS as exc:
            raise _classified(exc, self.provider, self._key) from None
        except Exception as exc:
            # the HTTP layer's own errors (a connection dropped mid-stream) surface unwrapped
            if type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "h11"):
                raise _classified(exc, self.provider, self._key) from None
            raise

    def _call(self, request: dict[str, Any], on_text: Callable[[str], None]) -> ModelReply:
        seconds = self.provider.timeout_seconds
        client = self.sdk(
            api_key=self._key,
            base_url=self.provider.base_url,
            timeout=self.timeout_type(seconds, connect=min(seconds, settings.LLM_CONNECT_TIMEOUT_SECONDS)),
            max_retries=0,
        )
        with client:
            if not self.provider.stream:
                builder = ReplyBuilder()
                self.read_whole(self.create(client, request), builder)
                return builder.build(no_arguments=self.no_arguments)
            builder = ReplyBuilder(on_text)
            with self.create(client, {**request, **self.stream_options()}) as stream:
                for item in stream:
                    self.read_piece(item, builder)
            return builder.build(no_arguments=self.no_arguments)

    # --- what an API style defines ------------------------------------------------------------

    @abstractmethod
    def request(
        self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]], max_tokens: int
    ) -> dict[str, Any]: ...

    @abstractmethod
    def create(self, client: Any, request: dict[str, Any]) -> Any: ...

    def stream_options(self) -> dict[str, Any]:
        return {"stream": True}

    @abstractmethod
    def read_whole(self, answer: Any, builder: ReplyBuilder) -> None: ...

    @abstractmethod
    def read_piece(self, piece: Any, builder: ReplyBuilder) -> None: ...


class OpenAIClient(ProviderClient):
    """OpenAI chat completions (and every server that speaks them)."""

    sdk = openai.OpenAI
    timeout_type = openai.Timeout

    def request(
        self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]], max_tokens: int
    ) -> dict[str, Any]:
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
        return request

    def create(self, client: Any, request: dict[str, Any]) -> Any:
        return client.chat.completions.create(**request)

    def stream_options(self) -> dict[str, Any]:
        return {"stream": True, "stream_options": {"include_usage": True}}

    def read_whole(self, completion: Any, builder: ReplyBuilder) -> None:
        if completion.usage is not None:
            builder.usage(
                input_tokens=completion.usage.prompt_tokens or 0,
                output_tokens=completion.usage.completion_tokens or 0,
            )
        if completion.choices:
            choice = completion.choices[0]
            builder.finish(choice.finish_reason)
            if choice.message.content:
                builder.text(choice.message.content)
            for index, call in enumerate(choice.message.tool_calls or []):
                builder.tool_call(
                    index, id=call.id, name=call.function.name or "", arguments=call.function.arguments or ""
                )

    def read_piece(self, chunk: Any, builder: ReplyBuilder) -> None:
        if getattr(chunk, "usage", None) is not None:
            builder.usage(
                input_tokens=chunk.usage.prompt_tokens or 0, output_tokens=chunk.usage.completion_tokens or 0
            )
        for choice in chunk.choices or []:
            delta = choice.delta
            if delta is not None and delta.content:
                builder.text(delta.content)
            for piece in (delta.tool_calls or []) if delta is not None else []:
                function = piece.function
                builder.tool_call(
                    piece.index,
                    id=piece.id or "",
                    name=(function.name or "") if function is not None else "",
                    arguments=(function.arguments or "") if function is not None else "",
                )
            builder.finish(choice.finish_reason)


class AnthropicClient(ProviderClient):
    """Anthropic's Messages API."""

    sdk = anthropic.Anthropic
    timeout_type = anthropic.Timeout
    no_arguments = "{}"

    def request(
        self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]], max_tokens: int
    ) -> dict[str, Any]:
        system, converted = anthropic_messages(messages)
        request: dict[str, Any] = {"model": model, "messages": converted, "max_tokens": max_tokens}
        if system:
            request["system"] = system
        if tools:
            request["tools"] = [
                {"name": t["name"], "description": t["description"], "input_schema": t["parameters"]}
                for t in tools
            ]
        return request

    def create(self, client: Any, request: dict[str, Any]) -> Any:
        return client.messages.create(**request)

    def read_whole(self, message: Any, builder: ReplyBuilder) -> None:
        builder.finish(message.stop_reason)
        if message.usage is not None:
            builder.usage(
                input_tokens=message.usage.input_tokens or 0, output_tokens=message.usage.output_tokens or 0
            )
        for index, block in enumerate(message.content or []):
            if block.type == "text":
                builder.text(block.text)
            elif block.type == "tool_use":
                builder.tool_call(index, id=block.id, name=block.name, arguments=dict(block.input or {}))

    def read_piece(self, event: Any, builder: ReplyBuilder) -> None:
        kind = event.type
        if kind == "message_start":
            usage = event.message.usage
            if usage is not None:
                builder.usage(input_tokens=usage.input_tokens or 0, output_tokens=usage.output_tokens or 0)
        elif kind == "content_block_start" and event.content_block.type == "tool_use":
            builder.tool_call(event.index, id=event.content_block.id, name=event.content_block.name)
        elif kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                builder.text(delta.text)
            elif delta.type == "input_json_delta" and event.index in builder.calls:
                builder.tool_call(event.index, arguments=delta.partial_json)
        elif kind == "message_delta":
            builder.finish(event.delta.stop_reason)
            if event.usage is not None:
                builder.usage(output_tokens=event.usage.output_tokens)


CLIENTS: dict[str, type[ProviderClient]] = {"openai": OpenAIClient, "anthropic": AnthropicClient}


def client_for(provider: Provider, api_key: str) -> ProviderClient:
    return CLIENTS[provider.api](provider, api_key)


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
