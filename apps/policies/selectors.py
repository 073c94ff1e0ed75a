from __future__ import annotations

import uuid

from django.db.models import QuerySet

from apps.policies.models import Policy, PolicyVersion


def policy_list() -> QuerySet[Policy]:
    """Policies are shared across the platform: anyone may read them (they hold no user data)."""
    return Policy.objects.select_related("active_version")


def policy_get(*, policy_id: uuid.UUID | str) -> Policy | None:
    try:
        uuid.UUID(str(policy_id))
    except ValueError:
        return None
    return policy_list().filter(pk=policy_id).first()


def policy_version_active(*, policy: Policy) -> PolicyVersion:
    return policy.active_version
