"""The one list of queues and the routes of every task.

Each worker pool starts with `-Q` naming the queues it serves; the run
submission service picks a run's queue from its kind (apps.runs.kinds).
"""

from __future__ import annotations

import enum

from celery import Celery
from kombu import Exchange
from kombu import Queue as KombuQueue

# RabbitMQ orders by message priority only on queues declared with a maximum.
MAX_PRIORITY = 9


class Queue(enum.StrEnum):
    CPU = "cpu"
    GPU = "gpu"
    INFERENCE = "inference"
    SANDBOX = "sandbox"
    IO = "io"
    CONTROL = "control"


ALL_QUEUES: tuple[str, ...] = tuple(q.value for q in Queue)

TASK_ROUTES = {
    "workers.runs.execute_run_task": {"queue": Queue.CPU.value},  # overridden per run
    "workers.control.*": {"queue": Queue.CONTROL.value},
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


def broker_priority(priority: int, broker_url: str) -> int:
    """Map an API priority (0..9, higher runs first) to the broker's scale.

    AMQP orders high numbers first; kombu's Redis transport orders low first.
    """
    priority = max(0, min(MAX_PRIORITY, int(priority)))
    if broker_url.startswith(("redis", "rediss", "valkey")):
        return MAX_PRIORITY - priority
    return priority


def configure_routing(app: Celery) -> None:
    app.conf.task_queues = declared_queues()
    app.conf.task_default_queue = Queue.CPU.value
    app.conf.task_default_exchange = "limitgraph"
    app.conf.task_default_routing_key = Queue.CPU.value
    app.conf.task_routes = TASK_ROUTES
