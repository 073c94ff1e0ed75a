"""Loaded into real worker processes (`celery worker --include tests.chaos.side_effects`):
counts, per run, how often an executor ran to its end, in Redis, outside the database whose
fencing the chaos tests check. An output check sees every finished execution before the
run's completion is written, so a run executed twice in effect shows a count of two."""

from __future__ import annotations

import os

import redis

from apps.runs.pipeline import Check, OutputSubject, register_output_check
from tests.chaos import COUNTER_KEY

_redis = redis.Redis.from_url(os.environ["CHAOS_COUNTER_URL"])


def _count(subject: OutputSubject) -> None:
    _redis.hincrby(COUNTER_KEY, str(subject.run.pk), 1)


register_output_check(Check(name="chaos-execution-counter", check=_count))
