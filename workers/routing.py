"""The queues every worker declares and the routes of every task.

Each worker pool starts with `-Q` naming the queues it serves; the names and
the priority mapping live in apps.core.queues, shared with the services that
send tasks by name.
"""

from __future__ import annotations

from celery import Celery
from kombu import Exchange
from kombu import Queue as KombuQueue

from apps.core.queues import ALL_QUEUES, EXECUTE_RUN_TASK, MAX_PRIORITY, Queue

TASK_ROUTES = {
    EXECUTE_RUN_TASK: {"queue": Queue.CPU.value},  # overridden per run
    "workers.control.*": {"queue": Queue.CONTROL.value},
    "workers.plots.*": {"queue": Queue.CONTROL.value},
}


def declared_queues() -> list[KombuQueue]:
    exchange = Exchange("limitgraph", type="direct")
    return [
        KombuQueue(
            name,
            exchange,
            routing_key=name,
            queue_arguments={"x-max-priority": MAX_PRIORITY + 1},
        )
        for name in ALL_QUEUES
    ]


def configure_routing(app: Celery) -> None:
    app.conf.task_queues = declared_queues()
    app.conf.task_default_queue = Queue.CPU.value
    app.conf.task_default_exchange = "limitgraph"
    app.conf.task_default_routing_key = Queue.CPU.value
    app.conf.task_routes = TASK_ROUTES
