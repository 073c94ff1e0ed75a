"""A run's message, built without `send_task`'s per-message work, is the message `send_task`
sends: the same body, headers, properties, queue, exchange, routing key and priority, and the
same task-sent event where those are on."""

from __future__ import annotations

import uuid

import pytest
from celery import current_app
from kombu.messaging import Producer

from apps.core.queues import EXECUTE_RUN_TASK, EXECUTE_RUNS_TASK, broker_priority
from apps.runs.models import Run
from apps.runs.services import submission


@pytest.fixture
def published(monkeypatch):
    """What reaches kombu's Producer.publish, instead of the broker: (body, options) each."""
    calls = []

    def record(self, body, **options):
        calls.append((body, options))

    monkeypatch.setattr(Producer, "publish", record)
    return calls


def as_send_task_sends(task, args, runs):
    first = runs[0]
    kind = submission.get_kind(first.kind)
    time_limit = kind.time_limit_seconds * len(runs)
    with current_app.producer_or_acquire() as producer:
        current_app.send_task(
            task,
            args=args,
            argsrepr=repr(args),
            kwargsrepr="{}",
            queue=first.queue,
            task_id=first.task_id,
            priority=broker_priority(first.priority, current_app.conf.broker_url),
            soft_time_limit=time_limit,
            time_limit=time_limit + 30,
            producer=producer,
        )


def runs(n: int, *, queue: str = "cpu", priority: int = 3) -> list[Run]:
    task_id = str(uuid.uuid4())
    return [
        Run(id=uuid.uuid4(), kind="echo", queue=queue, priority=priority, task_id=task_id, status="queued")
        for _ in range(n)
    ]


@pytest.mark.parametrize("sent_event", [False, True])
@pytest.mark.parametrize(
    ("task", "count", "queue"),
    [(EXECUTE_RUN_TASK, 1, "cpu"), (EXECUTE_RUNS_TASK, 25, "cpu"), (EXECUTE_RUN_TASK, 1, "gpu.1")],
)
def test_a_runs_message_is_the_one_send_task_sends(published, settings, task, count, queue, sent_event):
    current_app.conf.task_send_sent_event = sent_event
    try:
        group = runs(count, queue=queue)
        args = (str(group[0].pk),) if count == 1 else ([str(run.pk) for run in group],)
        with current_app.producer_or_acquire() as producer:
            submission._publish(task, args, group, producer)
        as_send_task_sends(task, args, group)
    finally:
        current_app.conf.task_send_sent_event = settings.CELERY_TASK_SEND_SENT_EVENT
    # the message, then (with sent events on) the task-sent event, from each
    assert len(published) == 2 * (1 + sent_event)
    ours, celerys = published[: len(published) // 2], published[len(published) // 2 :]
    (body, options), (celery_body, celery_options) = ours[0], celerys[0]
    # send_task also passes its argsrepr and kwargsrepr on as message properties, beside the
    # headers that carry them: ours leaves out that copy
    assert {celery_options.pop("argsrepr"), celery_options.pop("kwargsrepr")} == {repr(args), "{}"}
    assert body == celery_body and options == celery_options
    headers = options["headers"]
    limit = submission.get_kind("echo").time_limit_seconds * count
    assert headers["task"] == task and headers["id"] == group[0].task_id
    assert list(headers["timelimit"]) == [limit + 30, limit] and headers["ignore_result"] is None
    assert options["routing_key"] == queue and options["priority"] == 9 - 3
    if sent_event:
        event, celery_event = ours[1][0], celerys[1][0]
        moment = {"timestamp", "clock", "utcoffset", "local_received"}
        assert event["type"] == "task-sent" and event["uuid"] == group[0].task_id
        assert {k: v for k, v in event.items() if k not in moment} == {
            k: v for k, v in celery_event.items() if k not in moment
        }


def test_a_queue_is_declared_once_per_broker_channel(monkeypatch):
    declared = []
    monkeypatch.setattr(
        submission, "maybe_declare", lambda queue, channel: declared.append((queue.name, channel))
    )

    class Channel:  # a channel kombu replaced after a connection error is another object
        pass

    first, second = Channel(), Channel()
    for channel, queue in [(first, "cpu"), (first, "cpu"), (first, "gpu"), (second, "cpu"), (first, "gpu")]:
        submission._declare_once(channel, queue)
    assert declared == [("cpu", first), ("gpu", first), ("cpu", second)]
