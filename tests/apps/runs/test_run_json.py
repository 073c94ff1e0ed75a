"""run_json writes a run as RunOutputSerializer does (the API schema's shape), byte for byte."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.utils import timezone as django_timezone
from rest_framework.renderers import JSONRenderer

from apps.runs.api.serializers import RunOutputSerializer, run_json
from apps.runs.models import Run, RunStatus
from apps.runs.services import run_submit
from apps.traces.models import Trace


def _rendered(value: object) -> bytes:
    return JSONRenderer().render(value)


@pytest.mark.django_db
def test_run_json_matches_the_serializer_for_runs_in_every_shape(session, sent):
    submitted, _ = run_submit(
        user=session.owner,
        session_id=session.pk,
        kind="echo",
        payload={"text": "héllo", "n": [1, 2.5, None]},
        priority=7,
        idempotency_key="key-1",
    )
    finished = Run.objects.select_related("trace").get(pk=submitted.pk)
    finished.status = RunStatus.SUCCEEDED
    finished.progress = 1
    finished.attempts = 2
    finished.worker_hostname = "celery@gpu-1"
    finished.started_at = datetime(2026, 12, 3, 8, 0, 0, 123456, tzinfo=UTC)
    finished.finished_at = finished.started_at + timedelta(seconds=2)
    finished.duration_seconds = 2
    finished.result = {"echo": {"text": "héllo"}, "big": 10**20}
    withheld = Run.objects.get(pk=submitted.pk)
    withheld.result = {"secret": 1}
    withheld.result_withheld = True
    withheld.hold_reason = "flagged: jailbreak"
    withheld.status = RunStatus.HELD
    withheld.cancel_requested = True
    withheld.error = {"type": "Timeout", "message": "took too long"}
    # a time in another zone is written in the current one (UTC), as DRF does
    withheld.queued_at = datetime(2026, 12, 3, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    untraced = Run(
        id=uuid.uuid4(), owner=session.owner, session=session, kind="sleep", payload={}, queue="default"
    )
    for run in (submitted, finished, withheld, untraced):
        assert _rendered(run_json(run)) == _rendered(RunOutputSerializer(run).data)
    assert run_json(submitted)["trace"] == str(Trace.objects.get(run=submitted).pk)
    assert run_json(withheld)["result"] is None and run_json(finished)["result"]["big"] == 10**20
    assert run_json(untraced)["trace"] is None


@pytest.mark.django_db
def test_run_json_writes_times_in_the_active_time_zone_like_the_serializer(session, sent):
    run, _ = run_submit(user=session.owner, session_id=session.pk, kind="echo", payload={})
    with django_timezone.override("Europe/Paris"):
        assert run_json(run)["created_at"] == RunOutputSerializer(run).data["created_at"]
        assert run_json(run)["created_at"].endswith("+01:00")
