from __future__ import annotations

from django.contrib import admin

from apps.governance.models import Flag


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = [
        "trace",
        "type",
        "severity",
        "detector",
        "source",
        "state",
        "policy_version",
        "created_at",
    ]
    list_filter = ["type", "state", "source", "detector"]
    search_fields = ["trace__id", "reason"]
    readonly_fields = [field.name for field in Flag._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False  # flags are raised through the API or by detectors, where they are audited
