"""The review queue in the Django admin: reviewers and admins see quarantined traces and
blocked runs, read a trace with its matched spans marked, and release or reject it with a
note, one at a time or in bulk. Decisions go through apps.governance.services, which
enforce the same rules as the API (reviewer role, not one's own run, a note)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.text import Truncator

from apps.accounts.roles import is_reviewer
from apps.core.exceptions import ApplicationError
from apps.governance.highlight import json_with_marks, matched_text, spans_by_field
from apps.governance.models import OPEN_REVIEW_STATES, Flag, ReviewState, TraceReview
from apps.governance.selectors import SEVERITY_BANDS, flags_for_trace, review_search
from apps.governance.services import MAX_NOTE_LENGTH, review_reject, review_release
from apps.policies.presets import FLAG_TYPES
from apps.traces.services import trace_verify


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = [
        "trace",
        "type",
        "severity",
        "detector",
        "source",
        "state",
        "policy_version",
        "created_at",
    ]
    list_filter = ["type", "state", "source", "detector"]
    search_fields = ["trace__id", "reason"]
    readonly_fields = [field.name for field in Flag._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False  # flags are raised through the API or by detectors, where they are audited

    # Reviewers read every flag (their role, not a model permission, says so).
    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_reviewer(request.user) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_reviewer(request.user) or super().has_view_permission(request, obj)


@dataclass(frozen=True)
class Decision:
    name: str
    verb: str
    done: str
    service: Callable[..., TraceReview]


DECISIONS = {
    "release": Decision("release", "Release", "Released", review_release),
    "reject": Decision("reject", "Reject", "Rejected", review_reject),
}


class NoteForm(forms.Form):
    note = forms.CharField(
        max_length=MAX_NOTE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required: why you release or reject (kept in the audit log and the trace's provenance).",
    )


class DecisionForm(NoteForm):
    decision = forms.ChoiceField(choices=[(d.name, d.verb) for d in DECISIONS.values()])


def _error_text(error: ApplicationError) -> str:
    details = "; ".join(
        f"{field}: {' '.join(map(str, problems))}" for field, problems in error.fields.items()
    )
    return f"{error.message} ({details})" if details else error.message


class ReviewStateFilter(admin.SimpleListFilter):
    """Open reviews (quarantined or pending) unless another state is asked for."""

    title = "state"
    parameter_name = "state"
    OPEN, ALL = "open", "all"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(self.OPEN, "open (quarantined or pending)"), *ReviewState.choices, (self.ALL, "all")]

    def choices(self, changelist: Any) -> Any:
        # No "All" from Django on top: open is the default, "all" a choice of its own.
        for lookup, title in self.lookup_choices:
            yield {
                "selected": (self.value() or self.OPEN) == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[TraceReview]) -> QuerySet[TraceReview]:
        value = self.value() or self.OPEN
        if value == self.OPEN:
            return queryset.filter(state__in=OPEN_REVIEW_STATES)
        if value in ReviewState.values:
            return queryset.filter(state=value)
        return queryset


class FlagTypeFilter(admin.SimpleListFilter):
    title = "flag type"
    parameter_name = "flag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in FLAG_TYPES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[TraceReview]) -> QuerySet[TraceReview]:
        if self.value() is None:
            return queryset
        return queryset.filter(Exists(Flag.objects.filter(trace_id=OuterRef("trace_id"), type=self.value())))


class SeverityBandFilter(admin.SimpleListFilter):
    title = "severity band"
    parameter_name = "band"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(band, f"{band} ({low}-{high})") for band, (low, high) in SEVERITY_BANDS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[TraceReview]) -> QuerySet[TraceReview]:
        if self.value() not in SEVERITY_BANDS:
            return queryset
        low, high = SEVERITY_BANDS[self.value()]
        return queryset.filter(severity__gte=low, severity__lte=high)


class DetectorFilter(admin.SimpleListFilter):
    title = "detector"
    parameter_name = "detector"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = (
            Flag.objects.filter(trace__review__isnull=False)
            .values_list("detector", flat=True)
            .distinct()
            .order_by("detector")
        )
        return [(name, name) for name in names if name]

    def queryset(self, request: HttpRequest, queryset: QuerySet[TraceReview]) -> QuerySet[TraceReview]:
        if self.value() is None:
            return queryset
        flags = Flag.objects.filter(trace_id=OuterRef("trace_id"), detector=self.value())
        return queryset.filter(Exists(flags))


@admin.register(TraceReview)
class TraceReviewAdmin(admin.ModelAdmin):
    """The review queue. Only reviewers and admins see it; nothing here is edited as a form."""

    list_display = [
        "trace",
        "run",
        "run_status",
        "state",
        "severity",
        "short_reason",
        "policy",
        "opened_at",
    ]
    list_select_related = ["trace__run", "policy_version__policy"]
    list_filter = [
        ReviewStateFilter,
        FlagTypeFilter,
        SeverityBandFilter,
        ("trace__session", admin.RelatedOnlyFieldListFilter),
        ("policy_version__policy", admin.RelatedOnlyFieldListFilter),
        DetectorFilter,
    ]
    # The box searches run and trace ids, reasons and inputs (review_search); a field is named
    # only so that Django shows it.
    search_fields = ["reason"]
    search_help_text = "A run or trace id (or its start), or text in the reasons or the inputs."
    ordering = ["-severity", "opened_at"]
    actions = ["release_selected", "reject_selected"]
    change_form_template = "admin/governance/tracereview/review.html"

    # --- who may see and act -------------------------------------------------------------

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_reviewer(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_reviewer(request.user)

    def has_review_permission(self, request: HttpRequest) -> bool:
        return is_reviewer(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # decisions are the release and reject actions, never a form save

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # --- the list ------------------------------------------------------------------------

    @admin.display(description="run")
    def run(self, review: TraceReview) -> Any:
        return review.trace.run_id or "-"

    @admin.display(description="run status", ordering="trace__run__status")
    def run_status(self, review: TraceReview) -> str:
        run = review.trace.run
        return run.status if run is not None else "-"

    @admin.display(description="reason", ordering="reason")
    def short_reason(self, review: TraceReview) -> str:
        return Truncator(review.reason).chars(120)

    @admin.display(description="policy version", ordering="policy_version__policy__name")
    def policy(self, review: TraceReview) -> str:
        return review.policy_version.label

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[TraceReview], search_term: str
    ) -> tuple[QuerySet[TraceReview], bool]:
        return review_search(queryset, search_term), False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        return super().changelist_view(request, {"title": "Review queue", **(extra_context or {})})

    # --- decisions -----------------------------------------------------------------------

    def _decide(self, request: HttpRequest, decision: Decision, review: TraceReview, note: str) -> bool:
        try:
            decision.service(user=request.user, trace_id=review.trace_id, note=note)
        except ApplicationError as error:
            self.message_user(request, f"Trace {review.trace_id}: {_error_text(error)}", messages.ERROR)
            return False
        return True

    def _decide_selected(
        self, request: HttpRequest, queryset: QuerySet[TraceReview], decision: Decision
    ) -> TemplateResponse | None:
        """Django's delete-confirmation pattern: the action first answers a page that asks
        for the note; that page posts the same action again with `post` and the note."""
        form = NoteForm(request.POST if request.POST.get("post") else None)
        if form.is_bound and form.is_valid():
            done = sum(
                self._decide(request, decision, review, form.cleaned_data["note"]) for review in queryset
            )
            if done:
                self.message_user(request, f"{decision.done} {done} trace(s).", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"{decision.verb} the selected traces",
            "opts": self.opts,
            "decision": decision,
            "action": f"{decision.name}_selected",
            "reviews": queryset,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/governance/tracereview/decide_selected.html", context)

    @admin.action(description="Release selected traces (asks for a note)", permissions=["review"])
    def release_selected(self, request: HttpRequest, queryset: QuerySet[TraceReview]) -> Any:
        return self._decide_selected(request, queryset, DECISIONS["release"])

    @admin.action(description="Reject selected traces (asks for a note)", permissions=["review"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[TraceReview]) -> Any:
        return self._decide_selected(request, queryset, DECISIONS["reject"])

    # --- the detail page -----------------------------------------------------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """Read-only: the trace with its spans marked, its findings, provenance and run;
        a POST with a decision and a note releases or rejects it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        review = self.get_object(request, unquote(object_id))
        if review is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        form = DecisionForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            decision = DECISIONS[form.cleaned_data["decision"]]
            if self._decide(request, decision, review, form.cleaned_data["note"]):
                self.message_user(request, f"{decision.done} trace {review.trace_id}.", messages.SUCCESS)
                # back to the list as it was filtered when this trace was opened
                queue = add_preserved_filters(
                    {"preserved_filters": self.get_preserved_filters(request), "opts": self.opts},
                    reverse("admin:governance_tracereview_changelist"),
                )
                return HttpResponseRedirect(queue)
            review.refresh_from_db()
        context = {
            **self.admin_site.each_context(request),
            **self.review_context(review),
            "title": f"Review of trace {review.trace_id}",
            "opts": self.opts,
            "original": review,
            "form": form,
            "can_decide": review.is_open and self.has_review_permission(request),
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.change_form_template, context)

    def review_context(self, review: TraceReview) -> dict[str, Any]:
        trace = review.trace
        run = trace.run
        flags = list(flags_for_trace(trace=trace))
        spans = spans_by_field(flag.span for flag in flags)
        # A withheld result is kept on the run, not on the trace (only its digest is):
        # the reviewer reads the result the output checks scanned.
        outputs = {"result": run.result} if run is not None and run.result is not None else trace.outputs
        for flag in flags:
            flag.matched = matched_text(trace.inputs, flag.span) or matched_text(outputs, flag.span)
        provenance = list(trace.provenance.order_by("seq"))
        for entry in provenance:
            entry.data_json = json.dumps(entry.data, sort_keys=True, ensure_ascii=False)
        return {
            "review": review,
            "trace": trace,
            "run": run,
            "flags": flags,
            "inputs_html": json_with_marks(trace.inputs, spans),
            "outputs_html": json_with_marks(outputs, spans),
            "provenance": provenance,
            "verification": trace_verify(trace=trace),
        }
