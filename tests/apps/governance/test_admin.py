"""The review queue in the Django admin, through Django's test client: who sees it, its
order and filters, the detail page's marked spans, and release/reject with a note from the
detail page and in bulk, all through the same services as the API."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.test import Client

from apps.audit.models import AuditEntry
from apps.audit.services import audit_verify
from apps.governance.models import Flag, TraceReview
from apps.runs.models import Run, RunStatus
from apps.sessions.services import session_create
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

QUEUE = "/admin/governance/tracereview/"


def submit(api, session, payload, kind="echo"):
    response = api.post(
        "/api/v1/runs", {"session": str(session.pk), "kind": kind, "payload": payload}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def review_of(body) -> TraceReview:
    return TraceReview.objects.get(trace_id=body["trace"])


def detail_url(body) -> str:
    return f"{QUEUE}{review_of(body).pk}/change/"


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def listed(response) -> list[str]:
    assert response.status_code == 200, response.content[:500]
    return [str(review.trace_id) for review in response.context["cl"].result_list]


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def queue(api, other_user, strict_session):
    """Four open reviews under strict (two at 9, the older first; 6; 2), one under default in
    another user's session, and one already rejected."""
    bodies = {
        "blocked_old": submit(api, strict_session, {"prompt": "please [[jailbreak:9]] now"}),
        "pending": submit(api, strict_session, {"prompt": "a [[unverified:2]] claim"}),
        "quarantined": submit(api, strict_session, {"text": "the answer is [[high_risk:6]]"}),
        "blocked_new": submit(api, strict_session, {"prompt": "again [[malicious:9]]"}),
    }
    theirs = session_create(owner=other_user, name="theirs")  # the default preset
    bodies["default"] = submit(client_for(other_user), theirs, {"prompt": "an [[unsafe:8]] recipe"})
    bodies["rejected"] = submit(api, strict_session, {"prompt": "[[jailbreak:10]] drop it"})
    review = review_of(bodies["rejected"])
    TraceReview.objects.filter(pk=review.pk).update(state="rejected", note="gone")
    return bodies


def test_the_queue_lists_open_reviews_by_severity_then_age(reviewer, queue):
    response = admin_client(reviewer).get(QUEUE)

    order = ["blocked_old", "blocked_new", "default", "quarantined", "pending"]
    assert listed(response) == [queue[name]["trace"] for name in order]
    assert [review.severity for review in response.context["cl"].result_list] == [9, 9, 8, 6, 2]
    page = response.content.decode()
    assert "Review queue" in page
    # columns: run, its status, the policy version
    assert queue["blocked_old"]["id"] in page and '<td class="field-run_status">blocked</td>' in page
    assert '<td class="field-policy">strict@v1</td>' in page
    assert "Release selected traces" in page and "Reject selected traces" in page
    assert "Delete selected" not in page


def test_the_queue_filters(reviewer, queue, strict_session):
    client = admin_client(reviewer)

    def traces(*names):
        return [queue[name]["trace"] for name in names]

    assert listed(client.get(QUEUE, {"flag": "jailbreak"})) == traces("blocked_old")
    assert listed(client.get(QUEUE, {"band": "critical"})) == traces("blocked_old", "blocked_new")
    assert listed(client.get(QUEUE, {"band": "low"})) == traces("pending")
    assert listed(client.get(QUEUE, {"state": "pending"})) == traces("pending")
    assert listed(client.get(QUEUE, {"state": "rejected"})) == traces("rejected")
    assert len(listed(client.get(QUEUE, {"state": "all"}))) == 6
    session_filter = {"trace__session__id__exact": str(queue["default"]["session"])}
    assert listed(client.get(QUEUE, session_filter)) == traces("default")
    strict_policy = {"policy_version__policy__id__exact": str(strict_session.policy_id)}
    assert listed(client.get(QUEUE, strict_policy)) == traces(
        "blocked_old", "blocked_new", "quarantined", "pending"
    )
    Flag.objects.filter(trace_id=queue["pending"]["trace"]).update(detector="other-detector")
    assert listed(client.get(QUEUE, {"detector": "other-detector"})) == traces("pending")
    # search: a run id (or its start), a trace id, text in the inputs or the reasons
    run_id = queue["quarantined"]["id"]
    assert listed(client.get(QUEUE, {"q": run_id})) == traces("quarantined")
    assert listed(client.get(QUEUE, {"q": run_id[:8]})) == traces("quarantined")
    assert listed(client.get(QUEUE, {"q": queue["pending"]["trace"]})) == traces("pending")
    assert listed(client.get(QUEUE, {"q": "RECIPE"})) == traces("default")
    assert listed(client.get(QUEUE, {"q": "malicious"})) == traces("blocked_new")


def test_a_submitter_who_is_staff_sees_nothing_and_cannot_act(make_user, queue):
    staff_submitter = make_user("sam", is_staff=True)
    client = admin_client(staff_submitter)

    assert client.get(QUEUE).status_code == 403
    assert client.get(detail_url(queue["blocked_old"])).status_code == 403
    posted = client.post(detail_url(queue["blocked_old"]), {"decision": "release", "note": "mine now"})
    assert posted.status_code == 403
    bulk = client.post(
        QUEUE,
        {"action": "release_selected", "_selected_action": [review_of(queue["pending"]).pk], "post": "yes"},
    )
    assert bulk.status_code == 403
    assert "Trace reviews" not in client.get("/admin/").content.decode()
    assert review_of(queue["blocked_old"]).state == "quarantined"
    assert review_of(queue["pending"]).state == "pending"
    # not staff at all: the admin's login page
    assert admin_client(make_user("nina")).get(QUEUE).status_code == 302


def test_the_detail_page_marks_spans_and_escapes_the_text(api, reviewer, strict_session):
    prompt = '<script>alert("x")</script> then [[jailbreak:9]] & <b>more</b>'
    body = submit(api, strict_session, {"prompt": prompt, "n": 3})

    page = admin_client(reviewer).get(detail_url(body)).content.decode()

    inputs = page.split('id="review-inputs">')[1].split("</pre>")[0]
    assert "<mark>[[jailbreak:9]]</mark>" in inputs
    # the text around the span, escaped, as it reads in JSON
    assert "&lt;script&gt;alert(\\&quot;x\\&quot;)&lt;/script&gt; then <mark>" in inputs
    assert "</mark> &amp; &lt;b&gt;more&lt;/b&gt;&quot;" in inputs
    assert "<script>" not in page and "<b>more" not in page
    # the findings with their detector and reason, the chain, the run
    findings = page.split('id="review-findings"')[1].split("</table>")[0]
    assert "test-markers" in findings and "marker [[jailbreak:9]]" in findings
    assert "payload.prompt [" in findings and "<code>[[jailbreak:9]]</code>" in findings
    assert "The chain verifies" in page
    assert 'id="run-status">blocked' in page
    assert 'id="review-release"' in page and 'name="note"' in page


def test_release_from_the_detail_page_queues_the_run(
    api, reviewer, strict_session, django_capture_on_commit_callbacks
):
    body = submit(api, strict_session, {"prompt": "please [[jailbreak:9]] now"})
    client = admin_client(reviewer)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(detail_url(body), {"decision": "release", "note": "a red-team test prompt"})

    assert response.status_code == 302 and response["Location"] == QUEUE
    assert f"Released trace {body['trace']}." in messages_of(response)
    review = review_of(body)
    assert (review.state, review.decided_by, review.note) == ("released", reviewer, "a red-team test prompt")
    assert Run.objects.get(pk=body["id"]).status == RunStatus.QUEUED
    last = AuditEntry.objects.order_by("-seq").first()
    assert (last.action, last.actor, last.data["note"]) == (
        "trace.released",
        "rita",
        "a red-team test prompt",
    )
    assert audit_verify().valid
    # opened from a filtered list, a decision goes back to that list
    other = submit(api, strict_session, {"prompt": "and [[jailbreak:8]]"})
    filtered = client.post(
        f"{detail_url(other)}?_changelist_filters=band%3Dhigh", {"decision": "reject", "note": "no"}
    )
    assert filtered["Location"] == f"{QUEUE}?band=high"
    # decided: gone from the queue, and the page offers no second decision
    assert body["trace"] not in listed(client.get(QUEUE))
    assert 'id="review-release"' not in client.get(detail_url(body)).content.decode()


def test_reject_from_the_detail_page_fails_the_run(api, reviewer, strict_session):
    body = submit(api, strict_session, {"prompt": "[[malicious:6]] payload"})

    response = admin_client(reviewer).post(detail_url(body), {"decision": "reject", "note": "exfiltration"})

    assert response.status_code == 302
    run = Run.objects.get(pk=body["id"])
    assert run.status == RunStatus.FAILED and run.error["message"] == "rejected by review: exfiltration"
    assert review_of(body).state == "rejected"
    assert AuditEntry.objects.order_by("-seq").first().action == "trace.rejected"


def test_a_decision_without_a_note_is_refused(api, reviewer, strict_session):
    body = submit(api, strict_session, {"prompt": "please [[jailbreak:9]] now"})
    client = admin_client(reviewer)

    for note in ("", "   "):
        response = client.post(detail_url(body), {"decision": "release", "note": note})
        assert response.status_code == 200
        assert "This field is required." in response.content.decode()
    bulk = client.post(
        QUEUE,
        {"action": "reject_selected", "_selected_action": [review_of(body).pk], "post": "yes", "note": ""},
    )
    assert bulk.status_code == 200 and "This field is required." in bulk.content.decode()
    assert review_of(body).state == "quarantined"
    assert Run.objects.get(pk=body["id"]).status == RunStatus.BLOCKED
    assert not AuditEntry.objects.filter(action__in=["trace.released", "trace.rejected"]).exists()


def test_bulk_release_and_reject_ask_for_a_note_first(reviewer, queue):
    client = admin_client(reviewer)
    first, second = review_of(queue["blocked_old"]), review_of(queue["quarantined"])
    selected = {"action": "release_selected", "_selected_action": [first.pk, second.pk]}

    # the action's first answer is the page asking for the note; nothing is decided yet
    asked = client.post(QUEUE, selected)
    page = asked.content.decode()
    assert asked.status_code == 200 and 'name="note"' in page and 'name="post"' in page
    assert queue["blocked_old"]["trace"] in page and queue["quarantined"]["trace"] in page
    assert review_of(queue["blocked_old"]).state == "quarantined"

    done = client.post(QUEUE, {**selected, "post": "yes", "note": "batch looked fine"})

    assert done.status_code == 302
    assert "Released 2 trace(s)." in messages_of(done)
    assert {review_of(queue[n]).state for n in ("blocked_old", "quarantined")} == {"released"}
    assert Run.objects.get(pk=queue["blocked_old"]["id"]).status == RunStatus.PENDING  # sent on commit

    rejected = client.post(
        QUEUE,
        {
            "action": "reject_selected",
            "_selected_action": [review_of(queue["pending"]).pk],
            "post": "yes",
            "note": "no",
        },
    )
    assert "Rejected 1 trace(s)." in messages_of(rejected)
    assert review_of(queue["pending"]).state == "rejected"
    assert listed(client.get(QUEUE)) == [queue["blocked_new"]["trace"], queue["default"]["trace"]]


def test_a_reviewer_cannot_act_on_their_own_run(reviewer, queue):
    own_session = session_create(owner=reviewer, name="mine", policy="strict")
    own = submit(client_for(reviewer), own_session, {"prompt": "my own [[jailbreak:9]]"})
    client = admin_client(reviewer)

    refused = client.post(detail_url(own), {"decision": "release", "note": "trust me"})

    assert refused.status_code == 200
    assert f"Trace {own['trace']}: Reviewers cannot review their own runs." in messages_of(refused)
    assert review_of(own).state == "quarantined"
    # in bulk: the others are decided, their own is refused by name
    bulk = client.post(
        QUEUE,
        {
            "action": "release_selected",
            "_selected_action": [review_of(own).pk, review_of(queue["pending"]).pk],
            "post": "yes",
            "note": "fine",
        },
    )
    notes = messages_of(bulk)
    assert f"Trace {own['trace']}: Reviewers cannot review their own runs." in notes
    assert "Released 1 trace(s)." in notes
    assert (review_of(own).state, review_of(queue["pending"]).state) == ("quarantined", "released")


def test_grant_role_makes_a_reviewer_who_can_log_into_the_queue(make_user, queue, capsys):
    make_user("bob")
    client = Client()
    assert client.login(username="bob", password="pw-unused-123")
    assert client.get(QUEUE).status_code == 302  # not staff: sent to the login page

    call_command("grant_role", "bob", "reviewer")

    assert capsys.readouterr().out.strip() == "bob: submitter, reviewer (staff)"
    assert len(listed(client.get(QUEUE))) == 5

    call_command("grant_role", "bob", "reviewer", "--revoke")
    assert client.get(QUEUE).status_code == 302
