"""Chaos (e): the web process SIGKILLed in the middle of a batch submission. The batch is
stored whole or not at all, and the client's retry with the same Idempotency-Key stores it
once."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token

from apps.runs.models import Run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ATTEMPTS = 5


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _web_worker_pid(master_pid: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if children := _children(master_pid):
            return children[0]
        time.sleep(0.1)
    raise AssertionError("gunicorn started no worker")


def _post(url: str, body: dict, headers: dict[str, str]) -> int | None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (local URL)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None  # the connection died with the process


def _inside_the_batch_transaction(probe: psycopg.Connection) -> bool:
    """True once a server connection has inserted some of the batch and not committed it (its
    inserts and commit travel as one query string, `BEGIN; INSERT ...; COMMIT`, on PostgreSQL)."""
    row = probe.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL AND query ILIKE '%INSERT INTO%'"
    ).fetchone()
    return bool(row and row[0])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="watches PostgreSQL's open transactions")
def test_a_batch_is_stored_whole_or_not_at_all_when_the_web_process_dies(start_server, user, session):
    db = connection.settings_dict
    dsn = f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} user={db['USER']} dbname={db['NAME']}"
    token = Token.objects.create(user=user).key
    port = start_server()
    master = start_server.processes[port].pid
    url = f"http://127.0.0.1:{port}/api/v1/runs/batch"
    caught_mid_transaction = 0
    probe = psycopg.connect(dsn, autocommit=True)

    for attempt in range(ATTEMPTS):
        marker = f"batch-{attempt}"
        body = {
            "runs": [
                {"session": str(session.pk), "kind": "echo", "payload": {"marker": marker, "i": i}}
                for i in range(settings.MAX_BATCH_RUNS)
            ]
        }
        headers = {"Authorization": f"Token {token}", "Idempotency-Key": marker}
        worker = _web_worker_pid(master)
        answered: list[int | None] = []
        sender = threading.Thread(target=lambda b=body, h=headers, a=answered: a.append(_post(url, b, h)))
        sender.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sender.is_alive():
            if _inside_the_batch_transaction(probe):
                os.kill(worker, signal.SIGKILL)
                caught_mid_transaction += 1
                break
        sender.join(timeout=60)

        stored = Run.objects.filter(payload__marker=marker).count()
        assert stored in (0, settings.MAX_BATCH_RUNS), f"attempt {attempt}: {stored} runs of a batch stored"
        if answered[0] == 201:
            assert stored == settings.MAX_BATCH_RUNS

        # the client retries: gunicorn's master has started a new web worker
        assert _post(url, body, headers) in (200, 201)
        assert Run.objects.filter(payload__marker=marker).count() == settings.MAX_BATCH_RUNS
        assert Run.objects.filter(payload__marker=marker, status="queued").count() == settings.MAX_BATCH_RUNS

    probe.close()
    # most kills land between the batch's first insert and its commit (the probe polls for it)
    assert caught_mid_transaction >= 3, f"{caught_mid_transaction} kills landed inside a batch's transaction"
