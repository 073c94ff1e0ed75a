from __future__ import annotations

from django.contrib import admin

from apps.rd.models import RDKnee, RDPoint


@admin.register(RDPoint)
class RDPointAdmin(admin.ModelAdmin):
    list_display = ["session", "level", "rate", "distortion", "run", "created_at"]
    list_filter = ["session"]
    readonly_fields = ["session", "run", "level", "rate", "distortion", "created_at"]


@admin.register(RDKnee)
class RDKneeAdmin(admin.ModelAdmin):
    list_display = ["session", "level", "rate", "distortion", "points", "updated_at"]
    readonly_fields = ["session", "level", "rate", "distortion", "points", "updated_at"]
