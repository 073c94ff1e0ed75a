from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models.functions import Now

from apps.core.models import WorkerHeartbeat

# Missing this many heartbeats in a row means the worker is gone.
MISSED_HEARTBEATS_BEFORE_DEAD = 3


def worker_live_list(*, queue: str | None = None) -> list[WorkerHeartbeat]:
    cutoff = Now() - timedelta(seconds=settings.WORKER_HEARTBEAT_SECONDS * MISSED_HEARTBEATS_BEFORE_DEAD)
    workers = list(WorkerHeartbeat.objects.filter(last_seen__gte=cutoff))
    if queue is not None:
        workers = [worker for worker in workers if queue in worker.queues]
    return workers
