from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class RunStatus(models.TextChoices):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Stored but not cleared to run: an asynchronous input check is pending (held) or
    # policy refused it (blocked). Only a release sends it; the reconciler never does.
    HELD = "held"
    BLOCKED = "blocked"
    # Dead-letter: out of attempts (its worker died every time, or its transient failures
    # outlived the kind's retries). An admin may requeue it.
    DEAD = "dead"


FINAL_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.DEAD)
WAITING_STATUSES = (RunStatus.PENDING, RunStatus.QUEUED, RunStatus.HELD, RunStatus.BLOCKED)
MAX_PRIORITY = 9


class RunBatch(models.Model):
    """Runs submitted together; the idempotency key of a batch submission."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="run_batches")
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    # SHA-256 of the canonical request, to tell a replay from another request under the same key.
    request_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="run_batch_unique_idempotency_key_per_owner",
            )
        ]

    def __str__(self) -> str:
        return f"batch {self.id}"


class Run(models.Model):
    """A job. The row is the source of truth; the broker message only carries its id.

    Workers move it through its states with compare-and-set updates
    (apps.runs.services), `attempts` doubling as the fencing token: only the
    claimant of the current attempt may report progress or finish it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # owner and session are indexed by the (owner, -created_at) and (session, -created_at) indexes
    # below, kind by run_kind_idx (no pattern-ops twin: nothing matches kinds with LIKE): each
    # index more is one more write on every insert and every status change.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="runs", db_index=False
    )
    session = models.ForeignKey(
        "compute_sessions.Session", on_delete=models.CASCADE, related_name="runs", db_index=False
    )
    kind = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    queue = models.CharField(max_length=64)
    priority = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    progress = models.FloatField(default=0.0)
    attempts = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True, default="")
    worker_hostname = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    # A retry waits in the database until then (never as a broker countdown, which could
    # outlive the broker's visibility timeout); the reconciler sends it when it is due.
    not_before = models.DateTimeField(null=True, blank=True)
    retries = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    # An output check held the result back: stored, not shown until released.
    result_withheld = models.BooleanField(default=False)
    hold_reason = models.TextField(blank=True, default="")
    error = models.JSONField(null=True, blank=True)
    batch = models.ForeignKey(RunBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs")
    # The run that started this one (an `llm` run's tool call): cancelling it cancels this.
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="run_unique_idempotency_key_per_owner",
            ),
            models.CheckConstraint(
                condition=Q(progress__gte=0.0) & Q(progress__lte=1.0), name="run_progress_0_1"
            ),
            models.CheckConstraint(condition=Q(priority__lte=MAX_PRIORITY), name="run_priority_0_9"),
        ]
        indexes = [
            models.Index(fields=["status", "queue"], name="run_status_queue_idx"),
            models.Index(fields=["owner", "-created_at"], name="run_owner_created_idx"),
            models.Index(fields=["session", "-created_at"], name="run_session_created_idx"),
            models.Index(fields=["kind"], name="run_kind_idx"),
            # runs finished in the last minute, per queue: backpressure's drain rate
            models.Index(fields=["finished_at"], name="run_finished_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class RunEvent(models.Model):
    """Something a running run reports beside its progress, for a client following it: an
    `llm` run's partial output (type "output", {"text": ...}) and its tool calls as they start
    and end. Bounded: a run keeps its newest RUN_EVENTS_MAX_PER_RUN events; the result holds
    the whole answer. Ordered by id, which a client passes back to read only newer events."""

    id = models.BigAutoField(primary_key=True)
    # indexed by run_event_run_id_idx (run, id)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events", db_index=False)
    attempt = models.PositiveIntegerField()
    type = models.CharField(max_length=32)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "id"], name="run_event_run_id_idx")]

    def __str__(self) -> str:
        return f"{self.type} of {self.run_id}"
