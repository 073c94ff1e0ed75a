"""Transient failures retried with backoff from the database, dead runs, and their requeue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.runs.models import Run, RunStatus
from apps.runs.services import run_claim, run_enqueue, run_fail, run_reconcile, run_submit
from apps.runs.services.lifecycle import retry_delay_seconds

pytestmark = pytest.mark.django_db


def claimed(session) -> Run:
    run, _ = run_submit(user=session.owner, session_id=session.pk, kind="echo", payload={})
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
    return run_claim(run_id=run.pk, hostname="w")


def test_a_transient_failure_waits_in_the_database_then_runs_again(session, sent):
    run = claimed(session)
    assert run_fail(run=run, attempt=1, error_type="ConnectionError", message="db blip") == RunStatus.PENDING
    run.refresh_from_db()
    assert run.status == RunStatus.PENDING and run.retries == 1 and run.error["retrying"] is True
    assert timezone.now() < run.not_before < timezone.now() + timedelta(seconds=7)  # 5 s +-20%

    # not due yet: neither an enqueue nor the reconciler sends it
    assert run_enqueue(run_id=run.pk) is False and run_reconcile().resent == 0 and sent == []
    Run.objects.filter(pk=run.pk).update(not_before=timezone.now() - timedelta(seconds=1))
    assert run_reconcile().resent == 1 and sent == [run.pk]
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED


def test_retries_run_out_into_a_dead_run(session, sent):
    run = claimed(session)
    Run.objects.filter(pk=run.pk).update(retries=3)
    run.refresh_from_db()
    assert run_fail(run=run, attempt=1, error_type="TimeoutError", message="again") == RunStatus.DEAD
    run.refresh_from_db()
    assert run.status == RunStatus.DEAD and "gave up after 3 retries" in run.error["message"]


def test_other_failures_are_final(session):
    run = claimed(session)
    assert run_fail(run=run, attempt=1, error_type="ValueError", message="bad input") == RunStatus.FAILED


def test_a_stale_attempt_cannot_schedule_a_retry(session):
    run = claimed(session)
    Run.objects.filter(pk=run.pk).update(attempts=2)
    assert run_fail(run=run, attempt=1, error_type="ConnectionError", message="late") is None


def test_backoff_doubles_with_jitter_and_is_capped(settings):
    settings.RUN_RETRY_MAX_DELAY_SECONDS = 30
    delays = [retry_delay_seconds(backoff=5, retries=n) for n in range(6)]
    assert 4 <= delays[0] <= 6 and 8 <= delays[1] <= 12 and 16 <= delays[2] <= 24
    assert all(d <= 36 for d in delays[3:])


def test_a_dead_run_is_requeued_from_the_admin(session, sent, django_capture_on_commit_callbacks):
    run = claimed(session)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.DEAD, attempts=3, retries=2)
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-unused-123")
    client = Client()
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:runs_run_changelist"),
            {"action": "requeue_dead", "_selected_action": [str(run.pk)]},
            follow=True,
        )
    assert response.status_code == 200 and "Requeued 1 dead run" in response.content.decode()
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and (run.attempts, run.retries) == (0, 0) and sent == [run.pk]
    filtered = client.get(reverse("admin:runs_run_changelist"), {"status__exact": "dead"})
    assert filtered.status_code == 200
