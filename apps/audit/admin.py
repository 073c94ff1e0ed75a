from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path

from apps.audit.models import AuditEntry
from apps.audit.services import audit_verify


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only; the verify view recomputes the chain and names the first broken entry."""

    list_display = ["seq", "action", "actor", "created_at", "hash"]
    list_filter = ["action"]
    search_fields = ["actor", "action"]
    readonly_fields = ["seq", "actor", "action", "data", "created_at", "prev_hash", "hash"]
    change_list_template = "admin/audit/auditentry/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        verify = self.admin_site.admin_view(self.verify_view)
        return [path("verify/", verify, name="audit_auditentry_verify"), *super().get_urls()]

    def verify_view(self, request: HttpRequest) -> TemplateResponse:
        context = {**self.admin_site.each_context(request), "title": "Verify the audit log"}
        context["verification"] = audit_verify()
        return TemplateResponse(request, "admin/audit/verify.html", context)
