from __future__ import annotations

from django.contrib import admin

from apps.bookmarks.models import SavedRun, SavedRunTag


class SavedRunTagInline(admin.TabularInline):
    model = SavedRunTag
    extra = 0


@admin.register(SavedRun)
class SavedRunAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "kind", "usage_count", "last_run_status", "last_run_at", "updated_at")
    list_filter = ("kind", "tags__name")
    search_fields = ("name", "owner__username", "tags__name")
    readonly_fields = ("usage_count", "last_run", "last_run_at", "created_at", "updated_at")
    raw_id_fields = ("owner", "session")
    list_select_related = ("owner", "last_run")
    inlines = [SavedRunTagInline]

    @admin.display(description="last run status")
    def last_run_status(self, saved: SavedRun) -> str:
        return saved.last_run.status if saved.last_run is not None else "-"
