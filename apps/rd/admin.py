from __future__ import annotations

from django.contrib import admin

from apps.rd.models import RDCurve, RDPoint


class RDPointInline(admin.TabularInline):
    model = RDPoint
    fields = ["level", "rate", "distortion"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(RDCurve)
class RDCurveAdmin(admin.ModelAdmin):
    list_display = ["run", "session", "nodes", "knee_level", "created_at"]
    list_filter = ["session"]
    readonly_fields = ["run", "session", "nodes", "knee_level", "knee_rate", "knee_distortion", "created_at"]
    inlines = [RDPointInline]
