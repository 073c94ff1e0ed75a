"""Executing a model's tool calls: validate the arguments, run the tool (a function here, or a
child run of the same session through run_submit as the run's owner, waited for with the
parent's cancellation checks between polls), scan what comes back, and say what the model reads.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from apps.core.exceptions import ApplicationError
from apps.core.hashchain import canonical_json
from apps.governance.models import ReviewState
from apps.governance.policy import decide
from apps.governance.scanning import scan_value
from apps.governance.services import findings_record
from apps.llm.tools import Tool, tool_get
from apps.runs.models import Run, RunStatus
from apps.runs.selectors import run_get_for_user
from apps.runs.services import run_cancel, run_submit
from workers.context import ExecutionContext
from workers.llm.clients import ToolCall

POLL_FIRST_SECONDS = 0.1
POLL_MAX_SECONDS = 1.0
ENDED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.DEAD, RunStatus.BLOCKED)


class LlmLimitExceeded(Exception):
    """The model kept asking for tools past LLM_MAX_TOOL_ROUNDS, the run spent its tokens, or
    it ran past LLM_MAX_RUN_SECONDS."""


def run_time_exceeded(deadline: float) -> LlmLimitExceeded | None:
    """The error to end a run with once its LLM_MAX_RUN_SECONDS (`deadline`, monotonic) passed."""
    if time.monotonic() <= deadline:
        return None
    return LlmLimitExceeded(f"the run took over {settings.LLM_MAX_RUN_SECONDS:g}s (LLM_MAX_RUN_SECONDS)")


@dataclass
class ToolOutcome:
    """One tool call as the result records it and the model reads it."""

    name: str
    arguments: Any
    result: Any
    run: str | None
    ok: bool

    def as_result(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "result": self.result, "run": self.run}

    def model_text(self) -> str:
        text = json.dumps(self.result, ensure_ascii=False, default=str)
        limit = settings.LLM_TOOL_RESULT_MAX_CHARS
        return text if len(text) <= limit else text[:limit] + f"... [cut at {limit} characters]"


def sha256_of(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def parsed_arguments(call: ToolCall) -> tuple[Any, str | None]:
    """(arguments as the result keeps them, an error for the model or None)."""
    if isinstance(call.arguments, dict):
        return call.arguments, None
    try:
        return json.loads(call.arguments or "{}"), None
    except ValueError as exc:
        return call.arguments, f"The arguments are not valid JSON: {exc}"


def argument_errors(tool: Tool | None, name: str, offered: list[str], arguments: Any) -> list[str]:
    if tool is None or name not in offered:
        return [f"There is no tool {name!r}; this conversation offers: {', '.join(offered) or 'none'}."]
    return tool.argument_errors(arguments)


class ToolRunner:
    """The tool calls of one `llm` run (its context, owner and session)."""

    def __init__(self, ctx: ExecutionContext, offered: list[str], deadline: float) -> None:
        self.ctx = ctx
        self.run = ctx.run
        self.owner = ctx.run.owner
        self.offered = offered
        self.deadline = deadline  # the run's (LLM_MAX_RUN_SECONDS), monotonic

    def tool(self, name: str) -> Tool | None:
        return tool_get(name) if name in self.offered else None

    # --- run-kind tools ---------------------------------------------------------------------

    def submit(self, tool: Tool, arguments: dict[str, Any]) -> tuple[Run | None, str | None]:
        """The child run of a run-kind tool call, or the error the model gets instead. The same
        call (tool and arguments) in the same run, on a later attempt too, is the same child."""
        assert tool.run_kind is not None and tool.to_payload is not None
        key = f"llm:{self.run.pk}:{tool.name}:{sha256_of(arguments)[:32]}"
        try:
            child, _ = run_submit(
                user=self.owner,
                session_id=self.run.session_id,
                kind=tool.run_kind,
                payload=tool.to_payload(arguments),
                idempotency_key=key,
                parent=self.run,
            )
        except ApplicationError as exc:
            detail = f" {json.dumps(exc.fields, default=str)[:2000]}" if exc.fields else ""
            return None, f"The {tool.name} tool refused the call: {exc.message}{detail}"
        return child, None

    def wait(self, tool: Tool, child: Run) -> ToolOutcome:
        """Poll the child until it ends (checking the parent's cancellation between polls); the
        result or the error the model reads. Past the run's own time the run fails (and its
        failure stops the child)."""
        deadline = time.monotonic() + settings.LLM_TOOL_TIMEOUT_SECONDS
        delay = POLL_FIRST_SECONDS
        while True:
            self.ctx.check()
            if (past := run_time_exceeded(self.deadline)) is not None:
                raise past
            current = run_get_for_user(user=self.owner, run_id=child.pk)
            if current is None:
                return self._error(tool, child, "The tool run is gone.")
            if current.status in ENDED:
                break
            if time.monotonic() > deadline:
                try:
                    run_cancel(user=self.owner, run_id=child.pk)
                except ApplicationError:
                    pass  # it ended meanwhile
                limit = settings.LLM_TOOL_TIMEOUT_SECONDS
                return self._error(
                    tool, child, f"The tool run took over {limit:g}s (LLM_TOOL_TIMEOUT_SECONDS)."
                )
            time.sleep(delay)
            delay = min(POLL_MAX_SECONDS, delay * 1.5)
        if current.status == RunStatus.SUCCEEDED and current.result_withheld:
            return self._error(
                tool, child, f"The tool run's result is withheld for review: {current.hold_reason}"
            )
        if current.status == RunStatus.SUCCEEDED:
            result = tool.from_result(current.result) if tool.from_result else current.result
            return ToolOutcome(tool.name, None, result, str(child.pk), ok=True)
        if current.status == RunStatus.BLOCKED:
            return self._error(tool, child, f"The tool run was blocked by policy: {current.hold_reason}")
        if current.status == RunStatus.CANCELLED:
            return self._error(tool, child, "The tool run was cancelled.")
        error = current.error or {}
        return self._error(
            tool, child, f"The tool run failed: {error.get('type', 'Error')}: {error.get('message', '')}"
        )

    def _error(self, tool: Tool, child: Run | None, message: str) -> ToolOutcome:
        return ToolOutcome(tool.name, None, {"error": message}, str(child.pk) if child else None, ok=False)

    # --- function tools -----------------------------------------------------------------------

    def call_function(self, tool: Tool, arguments: dict[str, Any]) -> ToolOutcome:
        assert tool.function is not None
        try:
            result = tool.function(arguments)
            json.dumps(result)
        except Exception as exc:  # a tool's fault goes to the model, it does not end the run
            return ToolOutcome(
                tool.name, None, {"error": f"{type(exc).__name__}: {exc}"[:2000]}, None, ok=False
            )
        return ToolOutcome(tool.name, None, result, None, ok=True)

    # --- governance -----------------------------------------------------------------------------

    def screen(self, outcome: ToolOutcome, index: int) -> tuple[ToolOutcome, int]:
        """Scan a tool result before the model reads it, as the output check scans a run's result
        (when the session's policy scans outputs). Findings the policy quarantines are recorded
        as flags on this run's trace now, and the model gets an error instead of the text; lesser
        findings stay in the result, where the output check flags them when the run completes
        (so no finding is flagged twice). Returns the outcome and the number of findings."""
        if not outcome.ok:
            return outcome, 0
        version = self.run.session.policy.active_version
        if not version.scan_outputs:
            return outcome, 0
        findings = scan_value(outcome.result, path=f"result.tool_calls[{index}].result", source="output")
        if not findings:
            return outcome, 0
        decision = decide(findings, version, inputs=False)
        if decision.review != ReviewState.QUARANTINED:
            return outcome, len(findings)
        findings_record(
            trace=self.run.trace,
            findings=findings,
            version=version,
            decision=decision,
            actor=self.run.worker_hostname,
        )
        withheld = {"error": f"The tool result was withheld by governance: {decision.reason}"}
        return ToolOutcome(outcome.name, outcome.arguments, withheld, outcome.run, ok=False), len(findings)
