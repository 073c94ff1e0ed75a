from __future__ import annotations

from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from apps.artifacts.models import Artifact


def artifact_list_for_user(
    *,
    user: AbstractBaseUser,
    session_id: UUID | str | None = None,
    run_id: UUID | str | None = None,
) -> QuerySet[Artifact]:
    artifacts = Artifact.objects.select_related("owner")
    if not user.is_staff:
        artifacts = artifacts.filter(owner=user)
    if session_id is not None:
        artifacts = artifacts.filter(session_id=session_id)
    if run_id is not None:
        artifacts = artifacts.filter(run_id=run_id)
    return artifacts


def artifact_get_for_user(*, user: AbstractBaseUser, artifact_id: UUID | str) -> Artifact | None:
    return artifact_list_for_user(user=user).filter(pk=artifact_id).first()
