from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """A Celery worker's last sign of life and the queues it consumes.

    Workers upsert their row every WORKER_HEARTBEAT_SECONDS; readiness and
    GPU routing read it instead of broadcasting a ping to every worker.
    """

    hostname = models.CharField(max_length=255, unique=True)
    queues = models.JSONField(default=list)
    # What it can run, probed once at start (workers.bootstrap): {"backends": [...], "gpus": n}.
    capabilities = models.JSONField(default=dict, blank=True)
    # What it measures of itself at each beat (workers.gpu): {"runs_in_flight", "gpus": [...]}.
    stats = models.JSONField(default=dict, blank=True)
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname
