"""The `llm` run on a worker: the session's context, then model calls and tool rounds until the
model answers without asking for a tool, bounded by LLM_MAX_TOOL_ROUNDS, LLM_MAX_TOKENS_PER_RUN
and LLM_MAX_RUN_SECONDS. Each call's tokens are added to the session's usage as it returns.

Each model call takes one of its provider's concurrency slots (apps.llm.services), streams its
text into the run's events (apps.runs.models.RunEvent, type "output"), and is retried on 429,
5xx, timeouts and connection errors with exponential backoff and jitter (Retry-After honoured),
at most LLM_MAX_RETRIES_PER_RUN times in all. Every model call, retry, tool call, argument
fault and tool result is an entry of the run's provenance. The API key is read from the
provider's variable here and goes nowhere but the client's request header.
"""

from __future__ import annotations

import os
import random
import time
from contextlib import contextmanager
from typing import Any

from django.conf import settings

from apps.conversations.selectors import conversation_history
from apps.llm.history import conversation_key
from apps.llm.providers import Provider, provider_get
from apps.llm.services import llm_usage_record, provider_slot_acquire, provider_slot_release
from apps.runs.events import publish_output
from apps.runs.services import run_event_append, run_provenance_append
from apps.traces.selectors import provenance_list
from workers.context import ExecutionContext
from workers.llm.clients import ModelReply, ProviderError, RetryableProviderError, client_for
from workers.llm.tools import (
    LlmLimitExceeded,
    ToolOutcome,
    ToolRunner,
    argument_errors,
    parsed_arguments,
    run_time_exceeded,
    sha256_of,
)

# Partial output is stored at most this often (or once this many characters wait).
FLUSH_SECONDS = 0.25
FLUSH_CHARS = 2000
SLOT_POLL_SECONDS = 0.5
SLEEP_SLICE_SECONDS = 0.2


class ProviderBusy(Exception):
    """No concurrency slot of the provider came free within LLM_SLOT_WAIT_SECONDS."""


class OutputStream:
    """Streamed text into the run's events, in pieces of at most FLUSH_SECONDS' worth; each
    write also renews the provider slot the call holds."""

    def __init__(self, ctx: ExecutionContext, call: int, renew: Any) -> None:
        self.ctx, self.call, self.renew = ctx, call, renew
        self.pending: list[str] = []
        self.size = 0
        self.last = time.monotonic()

    def write(self, text: str) -> None:
        self.ctx.check()  # a cancel stops a streaming call between two pieces
        self.pending.append(text)
        self.size += len(text)
        if self.size >= FLUSH_CHARS or time.monotonic() - self.last >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            text = "".join(self.pending)
            event(self.ctx, "output", {"call": self.call, "text": text})
            publish_output(self.ctx.run, text)  # to clients following the run's event stream
            self.pending, self.size = [], 0
            self.renew()
        self.last = time.monotonic()


def event(ctx: ExecutionContext, type: str, data: dict[str, Any]) -> None:
    run_event_append(run=ctx.run, attempt=ctx.attempt, type=type, data=data)


def trace(ctx: ExecutionContext, action: str, data: dict[str, Any]) -> None:
    run_provenance_append(run=ctx.run, attempt=ctx.attempt, action=action, data=data)


def pause(ctx: ExecutionContext, seconds: float) -> None:
    """Sleep, noticing a cancel within SLEEP_SLICE_SECONDS."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        ctx.check()
        time.sleep(min(SLEEP_SLICE_SECONDS, left))


def backoff_seconds(retry: int) -> float:
    """Exponential from LLM_RETRY_BASE_SECONDS, capped, with jitter (half to all of it)."""
    delay = min(settings.LLM_RETRY_BASE_SECONDS * 2**retry, settings.LLM_RETRY_MAX_DELAY_SECONDS)
    return delay * random.uniform(0.5, 1.0)


class Conversation:
    """One `llm` run's calls: provider, client, budget, retries, usage."""

    def __init__(self, payload: dict[str, Any], ctx: ExecutionContext, deadline: float) -> None:
        provider = provider_get(payload["provider"])
        if provider is None:
            raise ProviderError(f"the provider {payload['provider']!r} is no longer configured")
        self.provider: Provider = provider
        self.ctx = ctx
        self.deadline = deadline
        self.model = payload["model"]
        self.max_tokens = payload["max_tokens"]
        self.client = client_for(provider, self._api_key())
        self.retries = 0
        self.calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        # the session's usage counts a run once, though a later attempt may call again
        trace = getattr(ctx.run, "trace", None)
        self.run_counted = (
            ctx.attempt > 1
            and trace is not None
            and provenance_list(trace=trace).filter(action="llm.model_call").exists()
        )

    def _api_key(self) -> str:
        name = self.provider.api_key_env
        if not name:
            return ""
        key = os.environ.get(name, "")
        if not key:
            raise ProviderError(
                f"{self.provider.name}: the variable {name} (its API key) is not set on this worker"
            )
        return key

    @contextmanager
    def slot(self) -> Any:
        """One of the provider's concurrency slots, for one model call."""
        ttl = 2 * self.provider.timeout_seconds + 30
        run = self.ctx.run
        deadline = time.monotonic() + settings.LLM_SLOT_WAIT_SECONDS
        while not provider_slot_acquire(
            provider=self.provider, run_id=run.pk, user=run.owner, ttl_seconds=ttl
        ):
            if time.monotonic() > deadline:
                raise ProviderBusy(
                    f"{self.provider.name} stayed busy for {settings.LLM_SLOT_WAIT_SECONDS:g}s "
                    f"({self.provider.concurrency} calls at once, {self.provider.user_concurrency} per user)"
                )
            pause(self.ctx, SLOT_POLL_SECONDS)
        last_renewal = [time.monotonic()]

        def renew() -> None:
            if time.monotonic() - last_renewal[0] > ttl / 3:
                provider_slot_acquire(provider=self.provider, run_id=run.pk, user=run.owner, ttl_seconds=ttl)
                last_renewal[0] = time.monotonic()

        try:
            yield renew
        finally:
            provider_slot_release(provider=self.provider, run_id=run.pk)

    def call(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelReply:
        budget = settings.LLM_MAX_TOKENS_PER_RUN - self.input_tokens - self.output_tokens
        if budget <= 0:
            raise LlmLimitExceeded(
                f"the run spent its {settings.LLM_MAX_TOKENS_PER_RUN} tokens (LLM_MAX_TOKENS_PER_RUN)"
            )
        self.calls += 1
        request_sha = sha256_of(
            [{**m, "tool_calls": [c.__dict__ for c in m.get("tool_calls", [])]} for m in messages]
        )
        while True:
            self.ctx.check()
            if (past := run_time_exceeded(self.deadline)) is not None:
                raise past
            started = time.monotonic()
            try:
                with self.slot() as renew:
                    output = OutputStream(self.ctx, self.calls, renew)
                    reply = self.client.call(
                        model=self.model,
                        messages=messages,
                        tools=tools,
                        max_tokens=min(self.max_tokens, budget),
                        on_text=output.write,
                    )
                    output.flush()
            except RetryableProviderError as exc:
                self._retry_or_raise(exc)
                continue
            self.input_tokens += reply.input_tokens
            self.output_tokens += reply.output_tokens
            llm_usage_record(
                session=self.ctx.run.session,
                provider=self.provider.name,
                model=self.model,
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                new_run=not self.run_counted,
            )
            self.run_counted = True
            trace(
                self.ctx,
                "llm.model_call",
                {
                    "call": self.calls,
                    "provider": self.provider.name,
                    "model": self.model,
                    "streamed": self.provider.stream,
                    "messages": len(messages),
                    "request_sha256": request_sha,
                    "input_tokens": reply.input_tokens,
                    "output_tokens": reply.output_tokens,
                    "finish_reason": reply.finish_reason,
                    "tool_calls": [call.name for call in reply.tool_calls],
                    "seconds": round(time.monotonic() - started, 3),
                },
            )
            return reply

    def _retry_or_raise(self, exc: RetryableProviderError) -> None:
        cap = settings.LLM_MAX_RETRIES_PER_RUN
        if self.retries >= cap:
            raise ProviderError(
                f"{exc} (gave up after {self.retries} retries, LLM_MAX_RETRIES_PER_RUN)"
            ) from None
        if exc.retry_after is not None:
            if exc.retry_after > settings.LLM_RETRY_MAX_DELAY_SECONDS:
                raise ProviderError(
                    f"{exc}; it asks to retry after {exc.retry_after:g}s, over LLM_RETRY_MAX_DELAY_SECONDS"
                ) from None
            delay = exc.retry_after
        else:
            delay = backoff_seconds(self.retries)
        self.retries += 1
        trace(
            self.ctx,
            "llm.model_retry",
            {
                "call": self.calls,
                "retry": self.retries,
                "status": exc.status,
                "error": str(exc)[:500],
                "delay_seconds": round(delay, 3),
                "retry_after": exc.retry_after,
            },
        )
        pause(self.ctx, delay)


def _context(payload: dict[str, Any], ctx: ExecutionContext) -> list[dict[str, Any]]:
    """The session's earlier turns with this provider model, then the payload's messages. The
    session id is the only scope: no other session's turns can come in."""
    if not payload.get("use_session_context"):
        return [dict(m) for m in payload["messages"]]
    history = conversation_history(
        session_id=ctx.session_id,
        key=conversation_key(payload["provider"], payload["model"]),
        max_tokens=settings.CONVERSATION_MAX_TOKENS,
    )
    system = [dict(m) for m in payload["messages"] if m["role"] == "system"]
    rest = [dict(m) for m in payload["messages"] if m["role"] != "system"]
    return system + [{"role": t.role, "content": t.content} for t in history] + rest


def _run_tool_round(
    reply: ModelReply, runner: ToolRunner, ctx: ExecutionContext, call: int, first_index: int
) -> list[ToolOutcome]:
    """Validate every call of the round, run the function tools, submit the run-kind ones,
    then wait for those: children of one round run side by side."""
    outcomes: list[ToolOutcome | None] = []
    waiting: list[tuple[int, Any, Any]] = []
    for position, tool_call in enumerate(reply.tool_calls):
        arguments, problem = parsed_arguments(tool_call)
        tool = runner.tool(tool_call.name)
        errors = [problem] if problem else argument_errors(tool, tool_call.name, runner.offered, arguments)
        if errors:
            trace(
                ctx,
                "llm.tool_arguments_invalid",
                {
                    "call": call,
                    "call_id": tool_call.id,
                    "tool": tool_call.name,
                    "errors": [e[:300] for e in errors[:20]],
                },
            )
            message = "Invalid arguments: " + "; ".join(errors[:20])
            outcomes.append(ToolOutcome(tool_call.name, arguments, {"error": message}, None, ok=False))
            continue
        assert tool is not None
        child = None
        if tool.run_kind is not None:
            child, refused = runner.submit(tool, arguments)
            if refused:
                outcomes.append(ToolOutcome(tool.name, arguments, {"error": refused}, None, ok=False))
        trace(
            ctx,
            "llm.tool_call",
            {
                "call": call,
                "call_id": tool_call.id,
                "tool": tool.name,
                "arguments_sha256": sha256_of(arguments),
                "run": str(child.pk) if child else None,
            },
        )
        event(
            ctx,
            "tool_call",
            {
                "call": call,
                "call_id": tool_call.id,
                "tool": tool.name,
                "run": str(child.pk) if child else None,
            },
        )
        if tool.run_kind is None:
            outcome = runner.call_function(tool, arguments)
            outcome.arguments = arguments
            outcomes.append(outcome)
        elif child is not None:
            outcomes.append(None)
            waiting.append((position, tool, child))
    for position, tool, child in waiting:
        outcome = runner.wait(tool, child)
        outcome.arguments = parsed_arguments(reply.tool_calls[position])[0]
        outcomes[position] = outcome
    done: list[ToolOutcome] = []
    for position, outcome in enumerate(outcomes):
        assert outcome is not None
        screened, findings = runner.screen(outcome, first_index + position)
        tool_call = reply.tool_calls[position]
        trace(
            ctx,
            "llm.tool_result",
            {
                "call": call,
                "call_id": tool_call.id,
                "tool": screened.name,
                "run": screened.run,
                "ok": screened.ok,
                "result_sha256": sha256_of(screened.result),
                "findings": findings,
                "withheld": outcome.ok and not screened.ok,
            },
        )
        event(
            ctx,
            "tool_result",
            {"call": call, "call_id": tool_call.id, "tool": screened.name, "ok": screened.ok},
        )
        done.append(screened)
    return done


def run_llm(payload: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """The run's result. A failure leaves tool runs still going to the run services, which stop
    them when the run fails for good (run_fail) and leave them to a retry's next attempt."""
    deadline = time.monotonic() + settings.LLM_MAX_RUN_SECONDS
    conversation = Conversation(payload, ctx, deadline)
    runner = ToolRunner(ctx, list(payload.get("tools", [])), deadline)
    tools = [runner.tool(name).as_public() for name in runner.offered]  # type: ignore[union-attr]
    messages = _context(payload, ctx)
    tool_calls: list[ToolOutcome] = []
    rounds = 0
    while True:
        reply = conversation.call(messages, tools)
        if not reply.tool_calls:
            break
        rounds += 1
        if rounds > settings.LLM_MAX_TOOL_ROUNDS:
            raise LlmLimitExceeded(
                f"the model still asked for tools after {settings.LLM_MAX_TOOL_ROUNDS} rounds "
                "(LLM_MAX_TOOL_ROUNDS)"
            )
        outcomes = _run_tool_round(reply, runner, ctx, conversation.calls, len(tool_calls))
        tool_calls += outcomes
        messages.append({"role": "assistant", "content": reply.text, "tool_calls": reply.tool_calls})
        for tool_call, outcome in zip(reply.tool_calls, outcomes, strict=True):
            messages.append(
                {
                    "role": "tool",
                    "call_id": tool_call.id,
                    "name": tool_call.name,
                    "content": outcome.model_text(),
                    "is_error": not outcome.ok,
                }
            )
    return {
        "message": {"role": "assistant", "content": reply.text},
        "tool_calls": [outcome.as_result() for outcome in tool_calls],
        "usage": {"input_tokens": conversation.input_tokens, "output_tokens": conversation.output_tokens},
        "provider": conversation.provider.name,
        "model": conversation.model,
    }
