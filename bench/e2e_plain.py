"""The baseline of bench/e2e.py: plain Celery, one no-op task, a Redis result backend.

celery -A bench.e2e_plain worker --concurrency 2 --pool prefork
"""

from __future__ import annotations

import os

from celery import Celery

app = Celery(
    "e2e_plain",
    broker=os.environ["PLAIN_BROKER_URL"],
    backend=os.environ["PLAIN_RESULT_BACKEND"],
)
# The same delivery settings the platform's workers use: acks late, one message prefetched.
app.conf.update(task_acks_late=True, worker_prefetch_multiplier=1, worker_hijack_root_logger=False)


@app.task(name="noop")
def noop(payload: dict) -> dict:
    return payload
