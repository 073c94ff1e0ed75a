"""Governance decisions: flags, quarantine, review (release / reject), the merge gate.

Every decision is appended to the audit log (apps.audit) and chained into the trace's
provenance, in the same transaction as the change it records.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from apps.accounts.roles import is_reviewer
from apps.audit.services import audit_append
from apps.core.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.governance.models import OPEN_REVIEW_STATES, Flag, FlagSource, FlagState, ReviewState, TraceReview
from apps.governance.policy import PolicyDecision, decide
from apps.governance.selectors import trace_for_governance
from apps.policies.models import PolicyVersion
from apps.policies.presets import FLAG_TYPES
from apps.runs.models import Run
from apps.runs.services import run_reject, run_release
from apps.traces.models import Trace
from apps.traces.services import provenance_append, trace_merge

PLATFORM = "governance"
MAX_NOTE_LENGTH = 4000


def _open_review(
    trace: Trace, decision: PolicyDecision, version: PolicyVersion, *, actor: str
) -> TraceReview | None:
    """Put the trace in the review queue (or raise its severity there)."""
    if decision.review is None:
        return None
    review, created = TraceReview.objects.select_for_update().get_or_create(
        trace=trace,
        defaults={
            "state": decision.review,
            "reason": decision.reason,
            "severity": decision.max_severity,
            "policy_version": version,
        },
    )
    if not created:
        if review.is_open and decision.review == ReviewState.QUARANTINED:
            review.state = ReviewState.QUARANTINED
        elif not review.is_open:
            # New findings after a decision reopen the trace.
            review.state, review.decided_by, review.decided_at, review.note = decision.review, None, None, ""
        review.severity = max(review.severity, decision.max_severity)
        review.reason, review.policy_version = decision.reason, version
        review.save()
    action = "trace.quarantined" if review.state == ReviewState.QUARANTINED else "trace.review_requested"
    audit_append(
        actor=actor,
        action=action,
        data={"trace": str(trace.pk), "reason": decision.reason, "policy_version": version.label},
    )
    return review


def findings_record(
    *,
    trace: Trace,
    findings: list[dict[str, Any]],
    version: PolicyVersion,
    decision: PolicyDecision,
    actor: str = PLATFORM,
    raised_by: AbstractBaseUser | None = None,
) -> list[Flag]:
    """Store findings as flags on a trace and act on the policy's decision (in the caller's
    transaction: the run's submission or completion)."""
    with transaction.atomic():
        flags = Flag.objects.bulk_create(
            Flag(
                trace=trace,
                type=f["flag"],
                severity=f["severity"],
                risk=f.get("risk", 0.0),
                reason=f["reason"][:2000],
                detector=f.get("detector", "")[:100],
                source=f["source"],
                span=f.get("span"),
                auto_detected=raised_by is None,
                raised_by=raised_by,
                policy_version=version,
            )
            for f in findings
        )
        summary = {
            "flags": [{"type": f.type, "severity": f.severity, "detector": f.detector} for f in flags],
            "policy_version": version.label,
            "decision": decision.as_json(),
        }
        provenance_append(trace=trace, actor=actor, action="governance.flagged", data=summary)
        audit_append(actor=actor, action="flag.raised", data={"trace": str(trace.pk), **summary})
        if decision.block:
            audit_append(
                actor=actor,
                action="run.blocked",
                data={"trace": str(trace.pk), "run": str(trace.run_id), "reason": decision.reason},
            )
        _open_review(trace, decision, version, actor=actor)
    return flags


def flag_raise(
    *,
    user: AbstractBaseUser,
    trace_id: uuid.UUID | str,
    flag_type: str,
    severity: int,
    reason: str,
) -> Flag:
    """A person's flag: reviewers and admins on any trace, a submitter on their own only."""
    trace = trace_for_governance(user=user, trace_id=trace_id)
    if trace is None:
        raise NotFound("Trace not found.")
    if flag_type not in FLAG_TYPES:
        raise ValidationFailed(fields={"flag": [f"One of: {', '.join(FLAG_TYPES)}."]})
    if isinstance(severity, bool) or not isinstance(severity, int) or not 1 <= severity <= 10:
        raise ValidationFailed(fields={"severity": ["An integer 1..10."]})
    if not reason.strip():
        raise ValidationFailed(fields={"reason": ["Say why."]})
    version = trace.session.policy.active_version
    finding = {
        "flag": flag_type,
        "severity": severity,
        "risk": severity / 10,
        "reason": reason,
        "detector": f"person:{user.get_username()}",
        "source": FlagSource.MANUAL,
        "span": None,
    }
    decision = decide([finding], version, inputs=False)
    with transaction.atomic():
        (flag,) = findings_record(
            trace=trace,
            findings=[finding],
            version=version,
            decision=decision,
            actor=user.get_username(),
            raised_by=user,
        )
    return flag


def _review_for_decision(user: AbstractBaseUser, trace_id: uuid.UUID | str, note: str) -> TraceReview:
    if not is_reviewer(user):
        raise PermissionDenied("Only reviewers and admins decide on reviews.")
    if not note or not note.strip():
        raise ValidationFailed(fields={"note": ["A note is required: say why."]})
    if len(note) > MAX_NOTE_LENGTH:
        raise ValidationFailed(fields={"note": [f"At most {MAX_NOTE_LENGTH} characters."]})
    review = (
        TraceReview.objects.select_for_update(of=("self",))
        .select_related("trace__session", "trace__run")
        .filter(trace_id=trace_id)
        .first()
    )
    if review is None:
        raise NotFound("This trace is not under review.")
    trace = review.trace
    run = trace.run
    if trace.session.owner_id == user.pk or (run is not None and run.owner_id == user.pk):
        raise PermissionDenied("Reviewers cannot review their own runs.")
    if not review.is_open:
        raise Conflict(f"This trace was {review.state} already.")
    return review


def _decide(review: TraceReview, user: AbstractBaseUser, state: ReviewState, note: str) -> None:
    review.state, review.decided_by, review.decided_at, review.note = state, user, timezone.now(), note
    review.save()
    flag_state = FlagState.RELEASED if state == ReviewState.RELEASED else FlagState.REJECTED
    Flag.objects.filter(trace=review.trace, state=FlagState.OPEN).update(state=flag_state)
    action = "trace.released" if state == ReviewState.RELEASED else "trace.rejected"
    data = {"trace": str(review.trace_id), "note": note, "policy_version": review.policy_version.label}
    provenance_append(
        trace=review.trace, actor=user.get_username(), action=f"governance.{state.value}", data=data
    )
    audit_append(actor=user.get_username(), action=action, data=data)


def review_release(*, user: AbstractBaseUser, trace_id: uuid.UUID | str, note: str) -> TraceReview:
    """Release: a blocked or held run is queued and executes; a withheld result becomes visible."""
    with transaction.atomic():
        review = _review_for_decision(user, trace_id, note)
        _decide(review, user, ReviewState.RELEASED, note)
        run = review.trace.run
        if run is not None:
            run_release(run=run, actor=user.get_username(), note=note)
    return review


def review_reject(*, user: AbstractBaseUser, trace_id: uuid.UUID | str, note: str) -> TraceReview:
    """Reject: the run ends failed with the reviewer's reason; the trace is marked rejected."""
    with transaction.atomic():
        review = _review_for_decision(user, trace_id, note)
        _decide(review, user, ReviewState.REJECTED, note)
        run = review.trace.run
        if run is not None:
            run_reject(run=run, actor=user.get_username(), reason=f"rejected by review: {note}")
    return review


def merge_blockers(trace: Trace) -> list[str]:
    """Every reason the trace's policy forbids merging it now (empty: it may merge)."""
    version = trace.session.policy.active_version
    reasons = []
    over = trace.flags.filter(state=FlagState.OPEN, severity__gt=version.merge_max_severity).order_by(
        "-severity"
    )
    limit = version.merge_max_severity
    for flag in over:
        reasons.append(f"open {flag.type} flag of severity {flag.severity} over {limit} (merge_max_severity)")
    review = TraceReview.objects.filter(trace=trace).first()
    if review is not None and review.state == ReviewState.QUARANTINED:
        reasons.append(f"the trace is quarantined: {review.reason}")
    if review is not None and review.state == ReviewState.PENDING:
        reasons.append("the trace waits for a human review (require_human_review)")
    if review is not None and review.state == ReviewState.REJECTED:
        reasons.append("the trace was rejected by a reviewer")
    run = trace.run
    if run is not None and not run.is_final:
        reasons.append(f"its run has not finished ({run.status})")
    if run is not None and run.result_withheld:
        reasons.append("its run's result is withheld for review")
    return reasons


def trace_merge_governed(*, user: AbstractBaseUser, trace_id: uuid.UUID | str) -> Trace:
    """Merge a trace into its session's history if its policy allows; else a Conflict
    listing every blocking reason."""
    trace = trace_for_governance(user=user, trace_id=trace_id)
    if trace is None:
        raise NotFound("Trace not found.")
    with transaction.atomic():
        trace = (
            Trace.objects.select_for_update(of=("self",))
            .select_related("session__policy__active_version", "run")
            .get(pk=trace.pk)
        )
        if trace.merged:
            raise Conflict("This trace is merged already.")
        reasons = merge_blockers(trace)
        if not reasons:
            merged = trace_merge(trace=trace, actor=user.get_username())
            audit_append(
                actor=user.get_username(),
                action="trace.merged",
                data={"trace": str(trace.pk), "policy_version": trace.session.policy.active_version.label},
            )
            return merged
    # The refusal is a decision too: recorded although nothing else changes.
    audit_append(
        actor=user.get_username(), action="merge.blocked", data={"trace": str(trace.pk), "reasons": reasons}
    )
    raise Conflict("The policy forbids this merge: " + "; ".join(reasons), fields={"reasons": reasons})


def run_is_under_review(run: Run) -> bool:
    return TraceReview.objects.filter(trace__run=run, state__in=OPEN_REVIEW_STATES).exists()
