from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from apps.artifacts.models import Artifact


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "session", "run", "size", "created_at", "download_link"]
    list_select_related = ["owner", "session", "run"]
    search_fields = ["id", "name", "sha256", "owner__username", "session__name"]
    readonly_fields = [
        "id",
        "owner",
        "session",
        "run",
        "name",
        "content_type",
        "size",
        "sha256",
        "storage_key",
        "created_at",
        "download_link",
    ]
    # The bytes arrive through the API or a run; deleting a row here also removes its bytes.

    @admin.display(description="Download")
    def download_link(self, artifact: Artifact) -> str:
        return format_html('<a href="{}">download</a>', reverse("artifact-download", args=[artifact.pk]))

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
