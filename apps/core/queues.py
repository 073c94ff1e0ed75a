"""Queue names, run priorities and task names: the one vocabulary shared by the
services that send work (apps) and the workers that consume it (workers.routing).

Services send tasks by name, so no app imports the workers package.
"""

from __future__ import annotations

import enum

# RabbitMQ orders by message priority only on queues declared with a maximum.
MAX_PRIORITY = 9

EXECUTE_RUN_TASK = "workers.runs.execute_run_task"
# one message for several short runs of a batch (RUN_MESSAGE_MAX_RUNS)
EXECUTE_RUNS_TASK = "workers.runs.execute_runs_task"
RECONCILE_RUNS_TASK = "workers.control.reconcile_runs_task"
RENDER_PLOT_TASK = "workers.plots.render_plot_task"
SCAN_RUN_INPUTS_TASK = "workers.governance.scan_run_inputs_task"


class Queue(enum.StrEnum):
    CPU = "cpu"
    GPU = "gpu"
    INFERENCE = "inference"
    SANDBOX = "sandbox"
    IO = "io"
    CONTROL = "control"


ALL_QUEUES: tuple[str, ...] = tuple(q.value for q in Queue)


def broker_priority(priority: int, broker_url: str) -> int:
    """Map an API priority (0..9, higher runs first) to the broker's scale.

    AMQP orders high numbers first; kombu's Redis transport orders low first.
    """
    priority = max(0, min(MAX_PRIORITY, int(priority)))
    if broker_url.startswith(("redis", "rediss", "valkey")):
        return MAX_PRIORITY - priority
    return priority
