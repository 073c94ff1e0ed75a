from __future__ import annotations

import copy

import pytest

# A real web server (gunicorn + uvicorn) and real Celery workers for the event stream tests.
from tests.config.test_gunicorn import start_server  # noqa: F401
from tests.workers.conftest import start_worker  # noqa: F401


@pytest.fixture
def last_insert_fails(monkeypatch):
    """A submission whose last insert (the traces' first entries) breaks a constraint: one
    entry twice."""
    from apps.runs.services import submission

    real = submission.traces_for_runs

    def with_a_duplicate_entry(**kwargs):
        traces, entries = real(**kwargs)
        duplicate = copy.copy(entries[0])
        duplicate.pk = None
        return traces, [*entries, duplicate]

    monkeypatch.setattr(submission, "traces_for_runs", with_a_duplicate_entry)
