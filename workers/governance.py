"""Inference-queue task: the full scan of a held run's inputs (rules and the embedding model).

The model is loaded once per worker process, on the first scan (apps.governance.detectors.model).
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from apps.core.queues import SCAN_RUN_INPUTS_TASK
from apps.governance.services import run_input_scan

# Loading the model on a cold worker takes seconds; a payload of 100,000 characters is about a
# hundred windows for it.
SCAN_SOFT_TIME_LIMIT_SECONDS = 300


@shared_task(
    name=SCAN_RUN_INPUTS_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=SCAN_SOFT_TIME_LIMIT_SECONDS,
    time_limit=SCAN_SOFT_TIME_LIMIT_SECONDS + 30,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def scan_run_inputs_task(run_id: str) -> str:
    return run_input_scan(run_id=run_id)
