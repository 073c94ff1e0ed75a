from __future__ import annotations

import re
import statistics
import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from apps.accounts.roles import is_reviewer
from apps.audit.models import AuditEntry
from apps.governance.models import OPEN_REVIEW_STATES, Flag, TraceReview
from apps.traces.models import Trace
from apps.traces.selectors import trace_get_for_user

SEVERITY_BANDS = {"low": (1, 3), "medium": (4, 6), "high": (7, 8), "critical": (9, 10)}
# A search that could be (the start of) a run or trace id: reviewers paste ids, whole or cut short.
ID_PREFIX = re.compile(r"[0-9a-fA-F-]{4,36}")


def trace_for_governance(*, user: AbstractBaseUser, trace_id: uuid.UUID | str) -> Trace | None:
    """Reviewers and admins see every trace; everyone else their own sessions' (a foreign id is missing)."""
    try:
        uuid.UUID(str(trace_id))
    except ValueError:
        return None
    if is_reviewer(user):
        return (
            Trace.objects.select_related("session__policy__active_version", "run").filter(pk=trace_id).first()
        )
    return trace_get_for_user(user=user, trace_id=trace_id)


def flags_for_trace(*, trace: Trace) -> QuerySet[Flag]:
    return trace.flags.select_related("policy_version__policy", "raised_by").order_by(
        "-severity", "created_at"
    )


def review_queue(
    *,
    state: str | None = None,
    flag_type: str | None = None,
    band: str | None = None,
    session_id: uuid.UUID | str | None = None,
    policy_id: uuid.UUID | str | None = None,
    detector: str | None = None,
    search: str | None = None,
) -> QuerySet[TraceReview]:
    """What waits for a reviewer (or, with `state`, what was decided): severity first, then age."""
    reviews = TraceReview.objects.select_related(
        "trace__session", "trace__run", "policy_version__policy", "decided_by"
    ).order_by("-severity", "opened_at")
    reviews = reviews.filter(state=state) if state else reviews.filter(state__in=OPEN_REVIEW_STATES)
    if flag_type:
        reviews = reviews.filter(trace__flags__type=flag_type)
    if band in SEVERITY_BANDS:
        low, high = SEVERITY_BANDS[band]
        reviews = reviews.filter(severity__gte=low, severity__lte=high)
    if session_id:
        reviews = reviews.filter(trace__session_id=session_id)
    if policy_id:
        reviews = reviews.filter(policy_version__policy_id=policy_id)
    if detector:
        reviews = reviews.filter(trace__flags__detector=detector)
    if search:
        reviews = review_search(reviews, search)
    return reviews.distinct()


def review_search(reviews: QuerySet[TraceReview], text: str) -> QuerySet[TraceReview]:
    """Reviews whose run or trace id starts with `text`, or whose reason, flags' reasons or
    trace inputs contain it (the API's queue and the admin's search box alike)."""
    text = text.strip()
    if not text:
        return reviews
    flag_reasons = Flag.objects.filter(trace_id=OuterRef("trace_id"), reason__icontains=text)
    matches = Q(reason__icontains=text) | Q(Exists(flag_reasons)) | Q(trace__inputs__icontains=text)
    if ID_PREFIX.fullmatch(text):
        matches |= Q(trace__run__id__istartswith=text) | Q(trace__id__istartswith=text)
    return reviews.filter(matches)


def governance_stats() -> dict[str, Any]:
    flags = Flag.objects.all()
    by_band = {
        band: flags.filter(severity__gte=low, severity__lte=high).count()
        for band, (low, high) in SEVERITY_BANDS.items()
    }
    decided = TraceReview.objects.filter(decided_at__isnull=False).annotate(
        turnaround=F("decided_at") - F("opened_at")
    )
    turnarounds = [review.turnaround.total_seconds() for review in decided.only("opened_at", "decided_at")]
    return {
        "flags_total": flags.count(),
        "flags_by_type": dict(flags.values_list("type").annotate(n=Count("pk")).order_by()),
        "flags_by_severity_band": by_band,
        "flags_by_detector": dict(flags.values_list("detector").annotate(n=Count("pk")).order_by()),
        "flags_by_state": dict(flags.values_list("state").annotate(n=Count("pk")).order_by()),
        "reviews_by_state": dict(TraceReview.objects.values_list("state").annotate(n=Count("pk")).order_by()),
        "merges_blocked": AuditEntry.objects.filter(action="merge.blocked").count(),
        "merges": AuditEntry.objects.filter(action="trace.merged").count(),
        "median_review_turnaround_seconds": statistics.median(turnarounds) if turnarounds else None,
    }
