"""The run pipeline's hooks: checks on a run's inputs before it is stored and sent,
and on its result before it is completed.

    submit: validate -> input checks -> store run + trace (one transaction) -> enqueue on commit
    finish: output checks -> run_complete (result, trace outputs, the kind's on_success)

The runs app defines the hooks; other apps fill them (governance registers its
scanners from its AppConfig.ready), so the runs app imports none of them. A check
returns a CheckResult; the strictest decision of all checks wins:

- ALLOW: nothing to hold the run for.
- HOLD: inputs: the run is stored `held` and not sent until a service releases it
  (an asynchronous scan still running); outputs: the run succeeds with its result
  withheld from the API until released.
- BLOCK: inputs: the run is stored `blocked` and never sent (policy); outputs: as HOLD.

Each result is chained into the run's trace (`run.checked` / `run.output_checked`),
and a check's `record` callback, if it has one, runs in the same transaction (to
store flags beside the run). The reconciler sends only runs cleared to run.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from apps.runs.models import Run
    from apps.sessions.models import Session


class Decision(enum.IntEnum):
    """Ordered: the strictest (largest) decision of all checks wins."""

    ALLOW = 0
    HOLD = 1
    BLOCK = 2


@dataclass(frozen=True)
class CheckResult:
    decision: Decision = Decision.ALLOW
    reason: str = ""
    # JSON-ready findings (flag, severity, reason, span, ...), chained into the trace.
    findings: tuple[dict[str, Any], ...] = ()

    def as_json(self, check: str) -> dict[str, Any]:
        return {
            "check": check,
            "decision": self.decision.name.lower(),
            "reason": self.reason,
            "findings": list(self.findings),
        }


@dataclass(frozen=True)
class InputSubject:
    """What an input check sees: the validated request, before anything is stored."""

    user: AbstractBaseUser
    session: Session
    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class OutputSubject:
    """What an output check sees: the run and the result its executor returned."""

    run: Run
    result: Any


@dataclass(frozen=True)
class Check:
    name: str
    check: Callable[[Any], CheckResult | None]
    # Runs inside the storing transaction with the stored run and this check's result.
    record: Callable[[Run, CheckResult], None] | None = field(default=None)


_INPUT_CHECKS: list[Check] = []
_OUTPUT_CHECKS: list[Check] = []


def register_input_check(check: Check) -> Check:
    _register(_INPUT_CHECKS, check)
    return check


def register_output_check(check: Check) -> Check:
    _register(_OUTPUT_CHECKS, check)
    return check


def unregister_check(name: str) -> None:
    for checks in (_INPUT_CHECKS, _OUTPUT_CHECKS):
        checks[:] = [check for check in checks if check.name != name]


def _register(checks: list[Check], check: Check) -> None:
    if any(existing.name == check.name for existing in checks):
        raise ValueError(f"A check named {check.name!r} is registered already.")
    checks.append(check)


@dataclass(frozen=True)
class Verdict:
    """All checks' results on one subject and the decision they add up to."""

    results: tuple[tuple[Check, CheckResult], ...] = ()

    @property
    def decision(self) -> Decision:
        return max((result.decision for _, result in self.results), default=Decision.ALLOW)

    @property
    def reason(self) -> str:
        strictest = self.decision
        return "; ".join(r.reason for _, r in self.results if r.decision == strictest and r.reason)

    def as_json(self) -> list[dict[str, Any]]:
        return [result.as_json(check.name) for check, result in self.results]

    def record(self, run: Run) -> None:
        for check, result in self.results:
            if check.record is not None:
                check.record(run, result)


def _run(checks: Iterable[Check], subject: Any) -> Verdict:
    results = []
    for check in list(checks):
        result = check.check(subject)
        if result is not None:
            results.append((check, result))
    return Verdict(tuple(results))


def check_inputs(subject: InputSubject) -> Verdict:
    return _run(_INPUT_CHECKS, subject)


def check_outputs(subject: OutputSubject) -> Verdict:
    return _run(_OUTPUT_CHECKS, subject)
