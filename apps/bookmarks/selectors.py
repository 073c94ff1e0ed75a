"""Reads on saved runs: always the caller's own (a saved run is personal, staff included)."""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from apps.bookmarks.models import SavedRun


def saved_run_list_for_user(
    *, user: AbstractBaseUser, tag: str | None = None, search: str | None = None
) -> QuerySet[SavedRun]:
    saved = SavedRun.objects.filter(owner=user).select_related("last_run").prefetch_related("tags")
    if tag:
        saved = saved.filter(tags__name=tag)
    if search:
        saved = saved.filter(name__icontains=search)
    return saved


def saved_run_get_for_user(*, user: AbstractBaseUser, saved_run_id: UUID | str) -> SavedRun | None:
    return saved_run_list_for_user(user=user).filter(pk=saved_run_id).first()
