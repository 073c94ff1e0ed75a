from __future__ import annotations

from django.contrib import admin

from apps.sessions.models import Session


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "policy", "created_at"]
    list_filter = ["policy"]
    search_fields = ["name", "owner__username", "id"]
    readonly_fields = ["id", "created_at"]
