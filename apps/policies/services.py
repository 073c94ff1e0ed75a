"""Writes on policies: drafts, approval by someone other than the author, activation
(rollback). Every approval and activation is audited."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings as django_settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from apps.accounts.roles import is_admin, is_reviewer
from apps.audit.services import audit_append
from apps.core.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.policies.models import Policy, PolicyVersion, VersionState
from apps.policies.presets import FLAG_TYPES, NEVER, PRESETS, SETTING_NAMES
from apps.policies.selectors import policy_get

SEVERITY_SETTINGS = ("quarantine_severity", "block_severity", "merge_max_severity", "max_anomaly_severity")
BOOLEAN_SETTINGS = ("auto_quarantine", "require_human_review", "scan_outputs", "scan_inputs_model")


def validated_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Settings as the domain accepts them; ValidationFailed names each fault."""
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(values) - set(SETTING_NAMES))
    for name in unknown:
        errors[name] = [f"Unknown setting; a policy has: {', '.join(SETTING_NAMES)}."]
    for name in SEVERITY_SETTINGS:
        value = values.get(name)
        if name in values and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= NEVER
        ):
            errors[name] = [f"Must be an integer severity 1..10, or {NEVER} for never."]
    for name in BOOLEAN_SETTINGS:
        if name in values and not isinstance(values[name], bool):
            errors[name] = ["Must be true or false."]
    if "blocked_flags" in values:
        flags = values["blocked_flags"]
        if not isinstance(flags, list) or any(flag not in FLAG_TYPES for flag in flags):
            errors["blocked_flags"] = [f"Must be a list of flag types: {', '.join(FLAG_TYPES)}."]
    if errors:
        raise ValidationFailed(fields=errors)
    return dict(values)


def _require_reviewer(user: AbstractBaseUser, action: str) -> None:
    if not is_reviewer(user):
        raise PermissionDenied(f"Only reviewers and admins may {action}.")


def _settings_of(version: PolicyVersion) -> dict[str, Any]:
    return {name: getattr(version, name) for name in SETTING_NAMES}


def policy_create(
    *,
    user: AbstractBaseUser,
    name: str,
    description: str = "",
    base: str = "default",
    settings: dict[str, Any] | None = None,
) -> Policy:
    """A new policy with a draft v1: the `base` preset (or policy) with `settings` over it.
    It governs nothing until a reviewer other than its author approves the draft."""
    _require_reviewer(user, "create policies")
    if base in PRESETS:
        values = dict(PRESETS[base])
    else:
        base_policy = policy_get(policy_id=base)
        if base_policy is None or base_policy.active_version is None:
            raise ValidationFailed(fields={"base": [f"{base!r} is neither a preset nor an active policy."]})
        values = _settings_of(base_policy.active_version)
    values.update(validated_settings(settings or {}))
    try:
        with transaction.atomic():
            policy = Policy.objects.create(name=name, description=description, created_by=user)
            PolicyVersion.objects.create(policy=policy, number=1, author=user, **values)
    except IntegrityError:
        raise Conflict(f"A policy named {name!r} exists already.") from None
    return policy


def preset_policy_ensure(*, name: str) -> Policy:
    """The preset's policy, created (v1, approved, active) if it is missing: a migration makes
    them, and this keeps a database that was emptied (a test flush, a restore) working."""
    with transaction.atomic():
        policy, created = Policy.objects.get_or_create(
            name=name, defaults={"description": f"The {name} preset."}
        )
        if created:
            version = PolicyVersion.objects.create(
                policy=policy,
                number=1,
                state=VersionState.APPROVED,
                approved_at=timezone.now(),
                **PRESETS[name],
            )
            policy.active_version = version
            policy.save(update_fields=["active_version"])
    return policy


def _draft(policy: Policy) -> PolicyVersion | None:
    return policy.versions.filter(state=VersionState.DRAFT).order_by("-number").first()


def policy_edit(
    *, user: AbstractBaseUser, policy_id: uuid.UUID | str, settings: dict[str, Any]
) -> PolicyVersion:
    """Edit the policy's draft, or start one from the active version; approved versions never change."""
    _require_reviewer(user, "edit policies")
    values = validated_settings(settings)
    with transaction.atomic():
        policy = Policy.objects.select_for_update().filter(pk=policy_id).first()
        if policy is None:
            raise NotFound("Policy not found.")
        draft = _draft(policy)
        if draft is None:
            number = (policy.versions.aggregate(n=Max("number"))["n"] or 0) + 1
            current = (
                _settings_of(policy.active_version) if policy.active_version else dict(PRESETS["default"])
            )
            draft = PolicyVersion.objects.create(policy=policy, number=number, author=user, **current)
        for name, value in values.items():
            setattr(draft, name, value)
        draft.author = user  # whoever last shaped the draft may not approve it
        draft.save()
    return draft


def policy_approve(*, user: AbstractBaseUser, policy_id: uuid.UUID | str) -> PolicyVersion:
    """The draft becomes the active version, approved by a reviewer or admin other than its author."""
    _require_reviewer(user, "approve policies")
    with transaction.atomic():
        policy = Policy.objects.select_for_update().filter(pk=policy_id).first()
        if policy is None:
            raise NotFound("Policy not found.")
        draft = _draft(policy)
        if draft is None:
            raise Conflict("This policy has no draft to approve.")
        if draft.author_id == user.pk:
            raise PermissionDenied("A draft must be approved by someone other than its author.")
        draft.state, draft.approved_by, draft.approved_at = VersionState.APPROVED, user, timezone.now()
        draft.save()
        policy.active_version = draft
        policy.save(update_fields=["active_version"])
        audit_append(
            actor=user.get_username(),
            action="policy.approved",
            data={
                "policy": str(policy.pk),
                "name": policy.name,
                "version": draft.number,
                "settings": _settings_of(draft),
            },
        )
    return draft


def policy_activate(*, user: AbstractBaseUser, policy_id: uuid.UUID | str, number: int) -> PolicyVersion:
    """Make an earlier (or later) approved version active again: a rollback. Admins only."""
    if not is_admin(user):
        raise PermissionDenied("Only admins may activate a policy version.")
    with transaction.atomic():
        policy = Policy.objects.select_for_update().filter(pk=policy_id).first()
        if policy is None:
            raise NotFound("Policy not found.")
        version = policy.versions.filter(number=number).first()
        if version is None:
            raise NotFound(f"Policy {policy.name} has no version {number}.")
        if version.state != VersionState.APPROVED:
            raise Conflict("Only an approved version can be activated; approve the draft first.")
        previous = policy.active_version.number if policy.active_version else None
        policy.active_version = version
        policy.save(update_fields=["active_version"])
        audit_append(
            actor=user.get_username(),
            action="policy.activated",
            data={"policy": str(policy.pk), "name": policy.name, "version": number, "previous": previous},
        )
    return version


def policy_resolve(value: str | None) -> Policy:
    """A policy by id or name (a preset's name is its policy's name); GOVERNANCE_POLICY when
    none is given. It must have an active version to govern a session."""
    value = value or django_settings.GOVERNANCE_POLICY
    policy = policy_get(policy_id=value) or Policy.objects.filter(name=value).first()
    if policy is None and value in PRESETS:
        policy = preset_policy_ensure(name=value)
    if policy is None:
        raise ValidationFailed(
            fields={"policy": [f"No policy {value!r}: give a preset name or a policy id."]}
        )
    if policy.active_version is None:
        raise ValidationFailed(fields={"policy": [f"Policy {policy.name} has no approved version yet."]})
    return policy
