"""Back to back run tasks skip the connection's health check (workers.bootstrap), since only
their claims retry; the control queue's tasks after a database restart still find a working
connection."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.workers.test_claim_reconnect import kill_backend_of_this_connection
from workers import bootstrap
from workers.control import reconcile_runs_task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="terminates a PostgreSQL backend")
@pytest.mark.parametrize("back_to_back", [False, True])
def test_a_reconcile_on_a_connection_that_died_between_tasks_still_runs(session, back_to_back):
    connection.ensure_connection()
    if back_to_back:
        bootstrap._note_task_end()  # as if a task had just ended on this connection
    else:
        bootstrap._last_task_end = -bootstrap.RECENTLY_USED_SECONDS
    bootstrap._check_database_connections()
    kill_backend_of_this_connection()

    outcome = reconcile_runs_task.apply()

    connection.close()  # (a broken one would fail the test's teardown)
    assert outcome.successful(), outcome.traceback
