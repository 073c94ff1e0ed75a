"""Chaos (c): PostgreSQL stopped for several seconds under submission load. The API answers
503 in the error shape with Retry-After, never 500; /ready names the failing check; every
submission answered 2xx is stored, and nothing stored before the outage is lost.

The outage is a real one: a PostgreSQL cluster of the test's own (initdb, a copy of the test
database), stopped and started again with pg_ctl while the machine's server carries on."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from apps.core.models import WorkerHeartbeat
from apps.runs.models import Run
from tests.config.test_gunicorn import _free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)
OUTAGE_SECONDS = 6.0
CLIENTS = 4
RECOVERY_SECONDS = 30.0


class PrivateCluster:
    """A throwaway PostgreSQL cluster owned by the `postgres` user, on a free port."""

    def __init__(self, root: Path) -> None:
        self.data = root / "data"
        self.port = _free_port()
        root.mkdir(mode=0o700)
        shutil.chown(root, "postgres", "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.socket_dir = root
        self.start()

    def _as_postgres(self, *argv: str, **kwargs) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, **kwargs
        )

    def pg_ctl(self, *argv: str) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", *argv)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.pg_ctl("-o", options, "-l", str(self.socket_dir / "server.log"), "start")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "stop")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/limitgraph"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[PrivateCluster]:
    root = Path(f"/tmp/limitgraph-chaos-pg-{uuid.uuid4().hex[:8]}")  # noqa: S108 (postgres must reach it)
    cluster = PrivateCluster(root)
    yield cluster
    try:
        cluster.pg_ctl("-m", "immediate", "stop")
    except subprocess.CalledProcessError:
        pass  # already stopped
    shutil.rmtree(root, ignore_errors=True)


def _copy_test_database(cluster: PrivateCluster) -> None:
    db = connection.settings_dict
    dump = subprocess.run(
        [
            "pg_dump",
            "--no-owner",
            "--no-privileges",
            "-h",
            db["HOST"] or "127.0.0.1",
            "-p",
            str(db["PORT"] or 5432),
            "-U",
            db["USER"],
            db["NAME"],
        ],
        check=True,
        capture_output=True,
    ).stdout
    with psycopg.connect(
        f"host=127.0.0.1 port={cluster.port} user=postgres dbname=postgres", autocommit=True
    ) as c:
        c.execute("CREATE DATABASE limitgraph")
    subprocess.run(
        [
            "psql",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(cluster.port),
            "-U",
            "postgres",
            "limitgraph",
        ],
        input=dump,
        check=True,
        capture_output=True,
    )


def _wait_for(db: psycopg.Connection, query: str, *params: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.execute(query, params).fetchone():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for: {query} {params}")


def _request(url: str, method: str = "GET", body: dict | None = None, headers: dict[str, str] | None = None):
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (local URL)
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.skipif(
    PG_BIN is None or shutil.which("runuser") is None, reason="needs PostgreSQL's server binaries"
)
def test_submissions_meet_a_503_while_postgresql_is_down_and_nothing_answered_2xx_is_lost(
    cluster, start_server, start_worker, user, session
):
    token = Token.objects.create(user=user).key
    _copy_test_database(cluster)
    port = start_server(DATABASE_URL=cluster.url, DATABASE_POOL_TIMEOUT="2")
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Token {token}"}
    db = psycopg.connect(
        f"host=127.0.0.1 port={cluster.port} user=postgres dbname=limitgraph", autocommit=True
    )
    # a worker on the same database, with a run in progress when the database goes away
    worker = start_worker("outage", wait=False, DATABASE_URL=cluster.url)
    _wait_for(db, f"SELECT 1 FROM {WorkerHeartbeat._meta.db_table} WHERE hostname = %s", worker.hostname)
    status, _, body = _request(
        f"{base}/api/v1/runs",
        "POST",
        {"session": str(session.pk), "kind": "sleep", "payload": {"seconds": 8}},
        headers,
    )
    assert status == 201, body
    sleeper = json.loads(body)["id"]
    _wait_for(db, f"SELECT 1 FROM {Run._meta.db_table} WHERE id = %s AND progress > 0", sleeper)
    db.close()
    answers: list[tuple[str, int, dict[str, str], bytes]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            marker = uuid.uuid4().hex
            body = {"session": str(session.pk), "kind": "echo", "payload": {"marker": marker}}
            answers.append((marker, *_request(f"{base}/api/v1/runs", "POST", body, headers)))

    clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in clients:
        thread.start()
    time.sleep(2)
    accepted_before = sum(1 for _, status, _, _ in answers if status == 201)
    cluster.stop()
    time.sleep(1)
    ready_status, _, ready_body = _request(f"{base}/ready")
    time.sleep(OUTAGE_SECONDS - 1)
    cluster.start()
    restarted, answered_before_restart = time.monotonic(), len(answers)
    # the pool reconnects with its own backoff (1 s, doubling): recovered once every client
    # has had a 201 after the restart
    while time.monotonic() - restarted < RECOVERY_SECONDS:
        after = [status for _, status, _, _ in answers[answered_before_restart:]]
        if after[-CLIENTS:] == [201] * CLIENTS:
            break
        time.sleep(0.2)
    stop.set()
    for thread in clients:
        thread.join(timeout=60)

    statuses = [status for _, status, _, _ in answers]
    assert accepted_before > 0
    assert set(statuses) <= {201, 503}, sorted(set(statuses))
    refused = [(headers_, body) for _, status, headers_, body in answers if status == 503]
    assert refused, "no request met the outage"
    for response_headers, body in refused:
        assert int(response_headers["Retry-After"]) > 0
        assert json.loads(body)["error"]["code"] == "database_unavailable"
    assert statuses[-CLIENTS:] == [201] * CLIENTS, (
        f"submissions did not recover {RECOVERY_SECONDS}s after the outage"
    )
    assert ready_status == 503
    assert json.loads(ready_body)["checks"]["database"].startswith("database unreachable")

    with psycopg.connect(f"host=127.0.0.1 port={cluster.port} user=postgres dbname=limitgraph") as db:
        stored = {row[0] for row in db.execute(f"SELECT payload->>'marker' FROM {Run._meta.db_table}")}
        accepted = {marker for marker, status, _, _ in answers if status == 201}
        assert accepted <= stored
        assert len(accepted) >= accepted_before
        # the worker waited for the database to write the run's progress and its result:
        # the run succeeded on its first attempt, not after a reconciler's requeue
        query = f"SELECT 1 FROM {Run._meta.db_table} WHERE id = %s AND status = 'succeeded' AND attempts = 1"
        _wait_for(db, query, sleeper)
