from __future__ import annotations

from typing import Any

from django.db.models.functions import Now
from django.utils import timezone

from apps.core.models import WorkerHeartbeat


def worker_heartbeat_record(
    *,
    hostname: str,
    queues: list[str],
    pid: int,
    capabilities: dict[str, Any] | None = None,
    stats: dict[str, Any] | None = None,
) -> None:
    # last_seen in database time, like the cutoff it is compared with: hosts' clocks may disagree.
    values = {"queues": sorted(queues), "pid": pid, "capabilities": capabilities or {}, "stats": stats or {}}
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={**values, "last_seen": Now()},
        create_defaults={
            **values,
            "last_seen": Now(),
            "started_at": timezone.now(),
        },
    )


def worker_heartbeat_remove(*, hostname: str) -> None:
    WorkerHeartbeat.objects.filter(hostname=hostname).delete()
