from __future__ import annotations

from django.contrib import admin

from apps.policies.models import Policy, PolicyVersion


class PolicyVersionInline(admin.TabularInline):
    model = PolicyVersion
    extra = 0
    can_delete = False
    fields = [
        "number",
        "state",
        "author",
        "approved_by",
        "approved_at",
        "quarantine_severity",
        "block_severity",
        "scan_outputs",
        "scan_inputs_model",
    ]
    readonly_fields = fields


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    """Read-only here: drafts, approval and activation go through the API, where they are audited."""

    list_display = ["name", "active_version", "created_by", "created_at"]
    readonly_fields = ["name", "description", "active_version", "created_by", "created_at"]
    inlines = [PolicyVersionInline]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
