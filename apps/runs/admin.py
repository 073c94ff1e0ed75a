from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from apps.core.exceptions import Conflict
from apps.runs.models import Run
from apps.runs.services import run_cancel, run_requeue


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "progress", "queue", "priority", "owner", "session", "created_at"]
    list_filter = ["status", "kind", "queue"]
    search_fields = ["id", "owner__username", "idempotency_key", "worker_hostname"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Run._meta.fields] + ["rd_plot"]
    actions = ["cancel", "requeue_dead"]

    @admin.display(description="RD curve")
    def rd_plot(self, run: Run) -> str:
        if run.kind != "rd_sweep" or run.status != "succeeded":
            return "-"
        url = f"{reverse('plot-rd')}?run={run.pk}"
        # drawn by a worker once the run succeeds: until then the picture is missing (reload)
        return format_html(
            '<img src="{0}&amp;format=svg" alt="RD curve (being drawn: reload in a moment)" '
            'style="max-width: 720px; background: #fff"><br><a href="{0}&amp;format=png">PNG</a>',
            url,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs are submitted through the API, where they are validated

    @admin.action(description="Cancel selected runs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        cancelled = 0
        for run in queryset:
            try:
                run_cancel(user=request.user, run_id=run.pk)
                cancelled += 1
            except Conflict:
                pass  # it ended meanwhile
        self.message_user(request, f"Cancel requested for {cancelled} run(s).", messages.SUCCESS)

    @admin.action(description="Requeue selected dead runs (a fresh set of attempts)")
    def requeue_dead(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        requeued = sum(run_requeue(run=run, actor=request.user.get_username()) for run in queryset)
        skipped = queryset.count() - requeued
        self.message_user(
            request,
            f"Requeued {requeued} dead run(s)"
            + (f"; {skipped} were not dead and were left alone." if skipped else "."),
            messages.SUCCESS,
        )
