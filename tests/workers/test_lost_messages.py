"""Chaos (b): the broker drops its data while runs are queued. The reconciler asks the broker
how many messages wait on each queue, finds fewer than the database's queued runs, and sends
them all again; every run completes once, well within a minute of the broker answering."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from apps.core.broker import broker_ready_counts
from apps.runs.models import Run, RunStatus
from apps.runs.services import run_reconcile, run_submit
from tests.workers.conftest import ROOT, process_env, wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RUNS = 12


def submit_echo_runs(session, count: int) -> list[str]:
    ids = []
    for index in range(count):
        run, _ = run_submit(user=session.owner, session_id=session.pk, kind="echo", payload={"i": index})
        ids.append(str(run.pk))
    return ids


def age_queued(ids: list[str]) -> None:
    Run.objects.filter(pk__in=ids).update(queued_at=timezone.now() - timedelta(minutes=1))


def test_a_flushed_redis_broker_loses_no_run(session, start_worker):
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.flushdb()
    ids = submit_echo_runs(session, RUNS)
    assert Run.objects.filter(pk__in=ids, status=RunStatus.QUEUED).count() == RUNS
    assert broker_ready_counts(["cpu"]) == {"cpu": RUNS}

    broker.flushdb()  # the broker loses every message (FLUSHALL, or a restart without persistence)
    age_queued(ids)
    assert broker_ready_counts(["cpu"]) == {"cpu": 0}

    assert run_reconcile().resent == RUNS
    assert broker_ready_counts(["cpu"]) == {"cpu": RUNS}
    # a second pass sees the messages and sends nothing more
    assert run_reconcile().resent == 0

    start_worker("after-flush")
    for run_id in ids:
        run = wait_for_run(run_id, {"succeeded", "failed"}, timeout=60)
        assert run.status == "succeeded" and run.attempts == 1


PURGE_AND_RECONCILE = """
import django; django.setup()
from datetime import timedelta
from django.utils import timezone
from celery import current_app
from apps.runs.models import Run
from apps.runs.services import run_reconcile
ids = {ids!r}
with current_app.connection_for_write() as conn:
    purged = conn.default_channel.queue_purge("cpu")
Run.objects.filter(pk__in=ids).update(queued_at=timezone.now() - timedelta(minutes=1))
print(purged, run_reconcile().resent)
"""

SUBMIT = """
import django; django.setup()
from apps.runs.services import run_submit
from apps.sessions.models import Session
session = Session.objects.get(pk="{session}")
for index in range({count}):
    run, _ = run_submit(user=session.owner, session_id=session.pk, kind="echo", payload={{"i": index}})
    print(run.pk)
"""


def test_a_purged_rabbitmq_queue_loses_no_run(session, start_worker):
    amqp = "amqp://guest:guest@127.0.0.1:5672//"
    env = process_env(CELERY_BROKER_URL=amqp)
    purge_first = "import django; django.setup()\nfrom celery import current_app\n"
    purge_first += "with current_app.connection_for_write() as c:\n    c.default_channel.queue_purge('cpu')\n"
    subprocess.run([sys.executable, "-c", purge_first], cwd=ROOT, env=env, timeout=60, capture_output=True)
    submitted = subprocess.run(
        [sys.executable, "-c", SUBMIT.format(session=session.pk, count=5)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert submitted.returncode == 0, submitted.stderr
    ids = submitted.stdout.split()
    reconciled = subprocess.run(
        [sys.executable, "-c", PURGE_AND_RECONCILE.format(ids=ids)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert reconciled.returncode == 0, reconciled.stderr
    purged, resent = map(int, reconciled.stdout.split()[-2:])
    assert purged >= 5 and resent == 5

    start_worker("rabbit-after-purge", CELERY_BROKER_URL=amqp)
    for run_id in ids:
        assert wait_for_run(run_id, {"succeeded", "failed"}, timeout=60).status == "succeeded"
