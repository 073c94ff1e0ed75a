from __future__ import annotations

from django.utils import timezone

from apps.core.models import WorkerHeartbeat


def worker_heartbeat_record(*, hostname: str, queues: list[str], pid: int) -> None:
    now = timezone.now()
    _, created = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={"queues": sorted(queues), "pid": pid, "last_seen": now},
        create_defaults={
            "queues": sorted(queues),
            "pid": pid,
            "last_seen": now,
            "started_at": now,
        },
    )


def worker_heartbeat_remove(*, hostname: str) -> None:
    WorkerHeartbeat.objects.filter(hostname=hostname).delete()
