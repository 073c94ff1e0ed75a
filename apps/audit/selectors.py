from __future__ import annotations

from django.db.models import QuerySet

from apps.audit.models import AuditEntry


def audit_list(*, action: str | None = None) -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.order_by("-seq")
    return entries.filter(action=action) if action else entries
