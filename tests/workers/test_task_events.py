"""Celery task events (for Flower) are off by default, and on once a monitor asks for them
(`enable_events`, as Flower does every few seconds while it runs): an idle monitor costs the
workers nothing, a watching one sees every task."""

from __future__ import annotations

import threading
import time

import pytest
from celery import current_app
from django.conf import settings as django_settings

from apps.runs.services import run_submit
from tests.workers.conftest import wait_for_run

pytestmark = pytest.mark.django_db(transaction=True)


class EventLog:
    """Task events as a monitor receives them, collected on a thread."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self._ready = threading.Event()
        self._connection = current_app.connection_for_read()
        self._receiver = current_app.events.Receiver(self._connection, handlers={"*": self.events.append})
        self._thread = threading.Thread(target=self._capture, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    def _capture(self) -> None:
        consumer = self._receiver.consume(limit=None, timeout=None, wakeup=False)
        self._ready.set()
        for _ in consumer:
            pass

    def task_ids(self, event_type: str) -> set[str]:
        return {event.get("uuid") for event in list(self.events) if event["type"] == event_type}

    def close(self) -> None:
        self._receiver.should_stop = True
        self._thread.join(10)
        self._connection.release()


def test_task_events_are_off_until_a_monitor_enables_them(session, start_worker):
    assert django_settings.CELERY_WORKER_SEND_TASK_EVENTS is False  # the default
    worker = start_worker("events")
    log = EventLog()
    try:
        quiet, _ = run_submit(user=session.owner, session_id=session.pk, kind="echo", payload={"n": 1})
        assert wait_for_run(quiet.pk, {"succeeded"}).status == "succeeded"
        time.sleep(0.5)
        assert quiet.task_id not in log.task_ids("task-succeeded")

        replies = current_app.control.enable_events(destination=[worker.hostname], reply=True, timeout=5)
        assert replies, "the worker did not answer enable_events"
        watched, _ = run_submit(user=session.owner, session_id=session.pk, kind="echo", payload={"n": 2})
        assert wait_for_run(watched.pk, {"succeeded"}).status == "succeeded"
        deadline = time.monotonic() + 10
        while watched.task_id not in log.task_ids("task-succeeded") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert watched.task_id in log.task_ids("task-received")
        assert watched.task_id in log.task_ids("task-succeeded")
    finally:
        log.close()
