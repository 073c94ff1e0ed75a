"""Governance decisions: flags, quarantine, review (release / reject), the merge gate.

Every decision is appended to the audit log (apps.audit) and chained into the trace's
provenance, in the same transaction as the change it records.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from apps.accounts.roles import is_reviewer
from apps.audit.services import audit_append
from apps.core.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.core.hashchain import canonical_json
from apps.core.queues import SCAN_RUN_INPUTS_TASK, Queue
from apps.governance.models import OPEN_REVIEW_STATES, Flag, FlagSource, FlagState, ReviewState, TraceReview
from apps.governance.policy import PolicyDecision, decide
from apps.governance.scanning import scan_value
from apps.governance.selectors import trace_for_governance
from apps.policies.models import PolicyVersion
from apps.policies.presets import FLAG_TYPES
from apps.runs.models import Run, RunStatus
from apps.runs.services import run_hold_decide, run_reject, run_release
from apps.traces.models import ProvenanceEntry, Trace
from apps.traces.services import provenance_append, trace_merge

logger = logging.getLogger(__name__)

PLATFORM = "governance"
MAX_NOTE_LENGTH = 4000
# A run stored `held` until the full scan of its inputs (policy `scan_inputs_model`) decides on
# it; the hold reason is what marks it (and what the scan's compare-and-set matches), so a run
# held for a reviewer's decision is never taken for one waiting on its scan.
INPUT_SCAN_HOLD_REASON = "awaiting the full input scan"
INPUT_SCAN_REQUESTED = "governance.input_scan_requested"


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


def input_scan_request(*, run: Run, resent: bool = False) -> None:
    """Ask for the full scan of a held run's inputs: chained into its provenance, sent to the
    inference queue on commit. A message that never arrives is sent again by
    input_scans_resend."""
    with transaction.atomic():
        provenance_append(
            trace=run.trace,
            actor=PLATFORM,
            action=INPUT_SCAN_REQUESTED,
            data={"queue": Queue.INFERENCE.value, "resent": resent},
        )
        run_id = str(run.pk)
        transaction.on_commit(lambda: _send_input_scan(run_id))


def _send_input_scan(run_id: str) -> None:
    try:
        current_app.send_task(SCAN_RUN_INPUTS_TASK, args=(run_id,), queue=Queue.INFERENCE.value)
    except Exception:
        # broker down: the run stays held and the reconciler sends the scan again after the grace
        logger.exception("could not send the full input scan", extra={"run_id": run_id})


def _held_for_scan(run_id: uuid.UUID | str) -> Any:
    return Run.objects.filter(pk=run_id, status=RunStatus.HELD, hold_reason=INPUT_SCAN_HOLD_REASON)


def _not_in(findings: list[dict[str, Any]], recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`findings` less those in `recorded` (the rules' findings, recorded at submission)."""
    left = Counter(canonical_json(f) for f in recorded)
    new = []
    for finding in findings:
        key = canonical_json(finding)
        if left[key]:
            left[key] -= 1
        else:
            new.append(finding)
    return new


def run_input_scan(*, run_id: uuid.UUID | str) -> str:
    """The full scan (rules and model, one batched call) of a run held for it, and the policy's
    decision on everything found: the run is released (queued on commit), blocked, or left held
    for a reviewer (its trace quarantined). Findings the rules made at submission are recorded
    once. Does nothing unless the run still waits for this scan: a redelivered task, a run
    cancelled or released by a reviewer meanwhile. Returns what it did."""
    run = _held_for_scan(run_id).select_related("session__policy__active_version").first()
    if run is None:
        return "nothing to do"
    version = run.session.policy.active_version
    # outside the transaction: the model takes seconds, and a row lock should not wait on it
    findings = scan_value(run.payload, path="payload", source="input", kind=run.kind, fast=False)
    recorded = scan_value(run.payload, path="payload", source="input", kind=run.kind, fast=True)
    new = _not_in(findings, recorded)
    decision = decide(findings, version, inputs=True)
    with transaction.atomic():
        if not _held_for_scan(run_id).select_for_update().exists():
            return "nothing to do"
        run = Run.objects.select_related("trace").get(pk=run_id)
        if new:
            findings_record(trace=run.trace, findings=new, version=version, decision=decision)
        if decision.block:
            outcome, reason = "blocked", decision.reason
        elif decision.review == ReviewState.QUARANTINED:
            # not run yet: a quarantined input waits for the reviewer's release or reject
            outcome, reason = "held for review", f"held for review: {decision.reason}"
        else:
            outcome, reason = "released", ""
        provenance_append(
            trace=run.trace,
            actor=PLATFORM,
            action="governance.input_scanned",
            data={
                "findings": len(findings),
                "new_findings": len(new),
                "policy_version": version.label,
                "decision": decision.as_json(),
                "outcome": outcome,
            },
        )
        if outcome == "released":
            run_release(run=run, actor=PLATFORM, note="the full input scan", held_for=INPUT_SCAN_HOLD_REASON)
        else:
            run_hold_decide(
                run=run,
                actor=PLATFORM,
                held_for=INPUT_SCAN_HOLD_REASON,
                block=decision.block,
                reason=reason,
            )
    return outcome


def input_scans_resend() -> int:
    """Send the full scan again for every run still held for it whose last request is older
    than GOVERNANCE_INPUT_SCAN_GRACE_SECONDS (its message lost, or its worker gone). Runs held
    for a reviewer's decision are left alone. A duplicate is harmless: the scan is
    compare-and-set on the hold. Returns how many were sent."""
    cutoff = timezone.now() - timedelta(seconds=settings.GOVERNANCE_INPUT_SCAN_GRACE_SECONDS)
    recent = ProvenanceEntry.objects.filter(
        trace__run=OuterRef("pk"), action=INPUT_SCAN_REQUESTED, created_at__gte=cutoff
    )
    stale = (
        Run.objects.filter(status=RunStatus.HELD, hold_reason=INPUT_SCAN_HOLD_REASON, created_at__lt=cutoff)
        .exclude(Exists(recent))
        .select_related("trace")
    )
    sent = 0
    for run in stale:
        with transaction.atomic():
            # the scan may have decided since the query: lock the hold and look again
            if _held_for_scan(run.pk).select_for_update().exists():
                input_scan_request(run=run, resent=True)
                sent += 1
    return sent
