"""Chaos (d): a network partition between a worker host and the broker and database. The
worker runs in a network namespace of its own, joined to this host by a veth pair; its link
is cut mid-run and restored later. The run completes once, on another worker, and the
partitioned worker's late writes are fenced off."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from apps.runs.models import Run
from apps.traces.models import ProvenanceEntry
from tests.workers.conftest import _test_database_url, wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


class Forwarder:
    """TCP from the namespace's side of the link to a service that listens on loopback only."""

    def __init__(self, listen_host: str, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server((listen_host, 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


class Partitionable:
    """A network namespace whose only way out is a veth link to this host."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.namespace, self.host_end, inner = f"lg-{tag}", f"lgh{tag}", f"lgn{tag}"
        octet = int(tag[:2], 16)
        self.host_address, inner_address = f"10.231.{octet}.1", f"10.231.{octet}.2"
        _ip("netns", "add", self.namespace)
        _ip("link", "add", self.host_end, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", self.namespace)
        _ip("addr", "add", f"{self.host_address}/30", "dev", self.host_end)
        _ip("link", "set", self.host_end, "up")
        inside = ("netns", "exec", self.namespace, "ip")
        _ip(*inside, "addr", "add", f"{inner_address}/30", "dev", inner)
        _ip(*inside, "link", "set", inner, "up")
        _ip(*inside, "link", "set", "lo", "up")
        self.forwarders: list[Forwarder] = []

    def reach(self, url: str) -> str:
        """`url` (a service on loopback) as seen from inside the namespace."""
        parts = urlsplit(url)
        forwarder = Forwarder(self.host_address, (parts.hostname or "127.0.0.1", parts.port or 0))
        self.forwarders.append(forwarder)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth + '@' if auth else ''}{self.host_address}:{forwarder.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def cut(self) -> None:
        _ip("link", "set", self.host_end, "down")

    def restore(self) -> None:
        _ip("link", "set", self.host_end, "up")

    def remove(self) -> None:
        for forwarder in self.forwarders:
            forwarder.close()
        subprocess.run(["ip", "link", "del", self.host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)


def _can_make_namespaces() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


@pytest.fixture
def partitionable() -> Iterator[Partitionable]:
    network = Partitionable()
    yield network
    network.remove()


@pytest.mark.skipif(not _can_make_namespaces(), reason="network namespaces need root and iproute2")
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the database must be reachable over TCP")
def test_a_partitioned_worker_loses_its_run_to_another_and_its_late_writes_are_fenced(
    partitionable, start_worker, beat, api, session
):
    cut_off = start_worker(
        "partitioned",
        prefix=("ip", "netns", "exec", partitionable.namespace),
        DATABASE_URL=partitionable.reach(_test_database_url()),
        CELERY_BROKER_URL=partitionable.reach(settings.CELERY_BROKER_URL),
    )
    response = api.post(
        "/api/v1/runs",
        {"session": str(session.pk), "kind": "sleep", "payload": {"seconds": 5}},
        format="json",
    )
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]
    wait_for_run(run_id, {"running"}, progress=lambda p: p > 0.1, worker_hostname=cut_off.hostname)

    partitionable.cut()
    # its lease lapses; the reconciler (beat) hands the run back and another worker takes it
    rescuer = start_worker("rescuer")
    run = wait_for_run(run_id, {"succeeded"}, timeout=60)
    assert run.worker_hostname == rescuer.hostname and run.attempts == 2
    progress_at_success = run.progress

    # the partitioned worker comes back: it finished its sleep long ago and now tries to
    # write its progress and result for attempt 1
    partitionable.restore()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "lease lost" not in cut_off.log_path.read_text():
        time.sleep(0.2)
    assert "lease lost" in cut_off.log_path.read_text()

    run = Run.objects.get(pk=run_id)
    assert run.status == "succeeded" and run.worker_hostname == rescuer.hostname
    assert run.attempts == 2 and run.progress == progress_at_success
    actions = list(
        ProvenanceEntry.objects.filter(trace__run_id=run_id).order_by("seq").values_list("action", flat=True)
    )
    assert actions.count("run.succeeded") == 1 and actions.count("run.started") == 2
    assert actions[-2:] == ["run.succeeded", "trace.outputs"]
