"""Compare-and-set state changes and their provenance entries, shared by the run services.

Every state change is an `UPDATE ... WHERE status = ...`, so two workers (a
redelivered message, a reconciler re-queue) can never both win; `attempts` is the
fencing token of the claimant. Lock order everywhere: the run row (by the UPDATE),
then the trace row.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from apps.runs.events import publish_run_state
from apps.runs.models import Run, RunStatus
from apps.traces.services import provenance_append


def chain(run: Run, *, actor: str, action: str, data: dict[str, Any]) -> None:
    trace = getattr(run, "trace", None)
    if trace is not None:
        provenance_append(trace=trace, actor=actor, action=action, data=data)


def transition(
    runs: QuerySet[Run], run: Run, *, actor: str, action: str, data: dict[str, Any], **values: Any
) -> bool:
    """Compare-and-set update plus its provenance entry, both or neither; its event after commit."""
    with transaction.atomic():
        if not runs.update(**values):
            return False
        chain(run, actor=actor, action=action, data=data)
        publish_run_state(run, action=action, values=values)
    return True


def held_by(run: Run, attempt: int) -> QuerySet[Run]:
    """The run, if it is still running under this attempt (the fence)."""
    return Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, attempts=attempt)
