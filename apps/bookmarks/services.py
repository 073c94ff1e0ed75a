"""Writes on saved runs; running one submits through apps.runs.services.run_submit, so a saved
run's payload is validated and checked by governance like any other submission."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.bookmarks.models import MAX_TAGS, NAME_MAX_LENGTH, SavedRun, SavedRunTag
from apps.bookmarks.selectors import saved_run_get_for_user
from apps.core.exceptions import Conflict, NotFound, ValidationFailed
from apps.runs.kinds import get_kind, kind_names
from apps.runs.models import MAX_PRIORITY, Run
from apps.runs.services import run_submit
from apps.sessions.selectors import session_get_for_user

TAG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
UPDATABLE_FIELDS = ("name", "kind", "payload", "tags", "session", "priority")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: objects merge key by key, `null` removes a key, anything
    else replaces what was there (lists whole)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX_LENGTH:
        raise ValidationFailed(fields={"name": [f"1 to {NAME_MAX_LENGTH} characters."]})
    return name.strip()


def _clean_kind(kind: Any) -> str:
    if not isinstance(kind, str) or get_kind(kind) is None:
        raise ValidationFailed(
            fields={"kind": [f"Unknown run kind {kind!r}; known kinds: {', '.join(kind_names())}."]}
        )
    return kind


def _clean_payload(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValidationFailed(fields={"payload": ["A JSON object."]})
    return payload


def _clean_tags(tags: Iterable[Any]) -> list[str]:
    cleaned = list(dict.fromkeys(tags))
    bad = [tag for tag in cleaned if not isinstance(tag, str) or not TAG_PATTERN.match(tag)]
    if bad:
        raise ValidationFailed(
            fields={
                "tags": [f"Not a tag: {bad[0]!r} (1 to 64 of A-Z a-z 0-9 _ . : -, starting alphanumeric)."]
            }
        )
    if len(cleaned) > MAX_TAGS:
        raise ValidationFailed(fields={"tags": [f"At most {MAX_TAGS} tags."]})
    return cleaned


def _clean_priority(priority: Any) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
        raise ValidationFailed(fields={"priority": [f"An integer in 0..{MAX_PRIORITY}."]})
    return priority


def _clean_session(user: AbstractBaseUser, session_id: uuid.UUID | str | None) -> uuid.UUID | None:
    if session_id is None:
        return None
    session = session_get_for_user(user=user, session_id=session_id)
    if session is None:
        raise ValidationFailed(fields={"session": ["Session not found."]})
    return session.pk


def _saved_or_404(user: AbstractBaseUser, saved_run_id: uuid.UUID | str) -> SavedRun:
    saved = saved_run_get_for_user(user=user, saved_run_id=saved_run_id)
    if saved is None:
        raise NotFound("Saved run not found.")
    return saved


def _save_unique(saved: SavedRun, tags: list[str] | None) -> SavedRun:
    try:
        with transaction.atomic():
            saved.save()
            if tags is not None:
                saved.tags.all().delete()
                SavedRunTag.objects.bulk_create(SavedRunTag(saved_run=saved, name=tag) for tag in tags)
    except IntegrityError as exc:
        raise Conflict(
            f"You already have a saved run named {saved.name!r}.", fields={"name": ["Already in use."]}
        ) from exc
    return saved_run_get_for_user(user=saved.owner, saved_run_id=saved.pk)


def saved_run_create(
    *,
    user: AbstractBaseUser,
    name: str,
    kind: str,
    payload: dict[str, Any] | None = None,
    tags: Iterable[str] = (),
    session_id: uuid.UUID | str | None = None,
    priority: int = 0,
) -> SavedRun:
    """A saved run of `kind`. Its payload is checked when it runs (overrides may complete it)."""
    saved = SavedRun(
        owner=user,
        name=_clean_name(name),
        kind=_clean_kind(kind),
        payload=_clean_payload(payload if payload is not None else {}),
        session_id=_clean_session(user, session_id),
        priority=_clean_priority(priority),
    )
    return _save_unique(saved, _clean_tags(tags))


def saved_run_update(
    *, user: AbstractBaseUser, saved_run_id: uuid.UUID | str, changes: dict[str, Any]
) -> SavedRun:
    """Change any of UPDATABLE_FIELDS (`session: None` unsets the session); usage is kept."""
    unknown = sorted(set(changes) - set(UPDATABLE_FIELDS))
    if unknown:
        raise ValidationFailed(fields={name: ["Not a field of a saved run."] for name in unknown})
    saved = _saved_or_404(user, saved_run_id)
    cleaners = {
        "name": _clean_name,
        "kind": _clean_kind,
        "payload": _clean_payload,
        "priority": _clean_priority,
    }
    for name, clean in cleaners.items():
        if name in changes:
            setattr(saved, name, clean(changes[name]))
    if "session" in changes:
        saved.session_id = _clean_session(user, changes["session"])
    tags = _clean_tags(changes["tags"]) if "tags" in changes else None
    return _save_unique(saved, tags)


def saved_run_delete(*, user: AbstractBaseUser, saved_run_id: uuid.UUID | str) -> None:
    _saved_or_404(user, saved_run_id).delete()


def saved_run_run(
    *,
    user: AbstractBaseUser,
    saved_run_id: uuid.UUID | str,
    payload_overrides: dict[str, Any] | None = None,
    session_id: uuid.UUID | str | None = None,
    priority: int | None = None,
    idempotency_key: str | None = None,
) -> tuple[Run, bool]:
    """Submit the saved run, its payload merged with `payload_overrides` (a JSON Merge Patch),
    into `session_id` or its own session; returns run_submit's (run, created). A new run counts
    as a use and becomes the last run; a replayed idempotency key changes nothing."""
    saved = _saved_or_404(user, saved_run_id)
    if payload_overrides is not None and not isinstance(payload_overrides, dict):
        raise ValidationFailed(fields={"payload": ["Overrides are a JSON object (a merge patch)."]})
    session = session_id if session_id is not None else saved.session_id
    if session is None:
        raise ValidationFailed(fields={"session": ["This saved run has no session: name one."]})
    with transaction.atomic():
        run, created = run_submit(
            user=user,
            session_id=session,
            kind=saved.kind,
            payload=merge_patch(saved.payload, payload_overrides or {}),
            priority=saved.priority if priority is None else priority,
            idempotency_key=idempotency_key,
        )
        if created:
            SavedRun.objects.filter(pk=saved.pk).update(
                usage_count=F("usage_count") + 1, last_run=run, last_run_at=timezone.now()
            )
    return run, created
