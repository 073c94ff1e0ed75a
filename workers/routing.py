"""The queues every worker declares and the routes of every task.

Each worker pool starts with `-Q` naming the queues it serves; the names and
the priority mapping live in apps.core.queues, shared with the services that
send tasks by name.

Per-card queues (`gpu.0`, `gpu.1`, ...) are not listed: there are as many as a host has
GPUs. Celery creates a queue it does not know on first use (task_create_missing_queues),
on the sending side (`send_task(queue="gpu.1")`) and on the worker (`-Q gpu,gpu.1`) alike;
the AMQP class below makes such a queue what a declared one is: bound to the project's
exchange by its own name, with the same maximum priority.
"""

from __future__ import annotations

from celery import Celery
from celery.app.amqp import AMQP
from kombu import Exchange
from kombu import Queue as KombuQueue

from apps.core.queues import ALL_QUEUES, EXECUTE_RUN_TASK, EXECUTE_RUNS_TASK, MAX_PRIORITY, Queue

TASK_ROUTES = {
    EXECUTE_RUN_TASK: {"queue": Queue.CPU.value},  # overridden per run
    EXECUTE_RUNS_TASK: {"queue": Queue.CPU.value},  # overridden per message
    "workers.control.*": {"queue": Queue.CONTROL.value},
    "workers.plots.*": {"queue": Queue.CONTROL.value},
    # the full input scan loads the embedding model: where the models are served
    "workers.governance.*": {"queue": Queue.INFERENCE.value},
}


EXCHANGE = "limitgraph"


def project_exchange(_queue_name: str | None = None) -> Exchange:
    return Exchange(EXCHANGE, type="direct")


class ProjectAMQP(AMQP):
    """Queues created on first use (the per-card `gpu.<index>`) join the project's exchange."""

    autoexchange = staticmethod(project_exchange)


def declared_queues() -> list[KombuQueue]:
    exchange = project_exchange()
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
    # before app.amqp is first used, which builds the queue table with its autoexchange
    app.amqp_cls = f"{__name__}:ProjectAMQP"
    app.conf.task_queues = declared_queues()
    app.conf.task_create_missing_queues = True
    app.conf.task_queue_max_priority = MAX_PRIORITY + 1
    app.conf.task_default_queue = Queue.CPU.value
    app.conf.task_default_exchange = EXCHANGE
    app.conf.task_default_routing_key = Queue.CPU.value
    app.conf.task_routes = TASK_ROUTES
