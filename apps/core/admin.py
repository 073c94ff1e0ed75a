from __future__ import annotations

from django.contrib import admin

from apps.core.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["hostname", "queues", "capabilities", "pid", "started_at", "last_seen"]
    readonly_fields = ["hostname", "queues", "capabilities", "pid", "started_at", "last_seen"]
