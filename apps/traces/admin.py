from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from apps.traces.models import ProvenanceEntry, Trace
from apps.traces.services import trace_verify


class ProvenanceInline(admin.TabularInline):
    model = ProvenanceEntry
    fields = ["seq", "actor", "action", "data", "created_at", "prev_hash", "hash"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["seq"]

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Trace)
class TraceAdmin(admin.ModelAdmin):
    list_display = ["id", "session", "run", "merged", "entry_count", "created_at"]
    list_filter = ["merged"]
    search_fields = ["id", "session__name", "session__owner__username"]
    readonly_fields = [
        "id",
        "session",
        "run",
        "inputs",
        "outputs",
        "metadata",
        "merged",
        "head_hash",
        "entry_count",
        "created_at",
        "updated_at",
        "chain_status",
        "rd_plot",
    ]
    inlines = [ProvenanceInline]

    @admin.display(description="RD curve")
    def rd_plot(self, trace: Trace) -> str:
        run = trace.run
        if run is None or run.kind != "rd_sweep" or run.status != "succeeded":
            return "-"
        url = f"{reverse('plot-rd')}?run={run.pk}"
        return format_html(
            '<img src="{0}&amp;format=svg" alt="RD curve of its run (being drawn: reload in a moment)" '
            'style="max-width: 720px; background: #fff"><br><a href="{0}&amp;format=png">PNG</a>',
            url,
        )

    @admin.display(description="Provenance chain")
    def chain_status(self, trace: Trace) -> str:
        verification = trace_verify(trace=trace)
        if verification.valid:
            return f"valid ({verification.entries} entries)"
        return f"BROKEN at entry {verification.broken_at}: {verification.reason}"

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
