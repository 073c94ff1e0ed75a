from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from apps.sessions.models import Session


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "policy", "created_at"]
    list_filter = ["policy"]
    search_fields = ["name", "owner__username", "id"]
    readonly_fields = ["id", "created_at", "rd_plot", "durations_plot"]

    @admin.display(description="RD curves")
    def rd_plot(self, session: Session) -> str:
        return _plot(reverse("plot-rd"), session, "RD curves of its sweeps (none yet, or being drawn)")

    @admin.display(description="Run durations")
    def durations_plot(self, session: Session) -> str:
        return _plot(
            reverse("plot-durations"), session, "durations by kind (no finished run yet, or being drawn)"
        )


def _plot(path: str, session: Session, alt: str) -> str:
    url = f"{path}?session={session.pk}"
    return format_html(
        '<img src="{0}&amp;format=svg" alt="{1}" style="max-width: 720px; background: #fff"><br>'
        '<a href="{0}&amp;format=png">PNG</a>',
        url,
        alt,
    )
