"""Live progress: the run services publish events; the web server streams them as server-sent
events (apps.runs.events, apps.runs.streams, apps.runs.api.events).

The streams are read from a real gunicorn + uvicorn server (the start_server fixture of
tests/config/test_gunicorn.py) with a real Celery worker where a run must execute.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import transaction
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.runs import events
from apps.runs.models import Run
from apps.runs.services import RunRequest, run_cancel, run_submit, run_submit_batch
from apps.sessions.services import session_create

STREAM_TIMEOUT = 60.0


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Broker messages the services would send (the broker is not what these tests are about)."""
    messages: list[object] = []

    def send(run: Run, producer: object = None) -> bool:
        messages.append(run.pk)
        return True

    monkeypatch.setattr("apps.runs.services.submission.send_run", send)
    return messages


def _history(channel: str) -> list[tuple[int, str, dict[str, Any]]]:
    client = redis.Redis.from_url(settings.EVENTS_REDIS_URL)
    entries = []
    for message in client.zrange(events.history_key(channel), 0, -1):
        event_id, event_type, data = message.decode().split("\n", 2)
        entries.append((int(event_id), event_type, json.loads(data)))
    return entries


# --- publishing (no server) -------------------------------------------------------------------


@pytest.mark.django_db
def test_state_changes_are_published_after_commit_numbered_and_kept_for_resuming(
    session, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = run_submit(user=session.owner, session_id=session.pk, kind="sleep", payload={"seconds": 1})
    with django_capture_on_commit_callbacks(execute=True):
        run_cancel(user=session.owner, run_id=run.pk)

    stored = _history(events.run_channel(run.pk))
    assert [(event_id, kind) for event_id, kind, _ in stored] == [(1, "status"), (2, "status")]
    (_, _, submitted), (_, _, cancelled) = stored
    assert (submitted["status"], submitted["action"]) == ("queued", "run.submitted")
    assert (cancelled["status"], cancelled["action"]) == ("cancelled", "run.cancelled")
    assert (submitted["final"], cancelled["final"]) == (False, True)
    assert cancelled["run"] == str(run.pk) and cancelled["session"] == str(session.pk)
    # the session's stream numbers the same events in its own sequence
    assert [data["status"] for _, _, data in _history(events.session_channel(session.pk))][-2:] == [
        "queued",
        "cancelled",
    ]


@pytest.mark.django_db
def test_a_batchs_events_are_numbered_per_run_and_in_order_per_session_across_script_calls(
    session, sent, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(events, "EVENTS_PER_CALL", 2)  # 5 runs: three script calls
    calls: list[int] = []
    execute = events._Publisher._execute

    def counted(self: events._Publisher, sha: str, batch: list[Any]) -> None:
        calls.append(len(batch))
        execute(self, sha, batch)

    monkeypatch.setattr(events._Publisher, "_execute", counted)
    requests = [RunRequest(session_id=session.pk, kind="sleep", payload={"seconds": i}) for i in range(1, 6)]
    with django_capture_on_commit_callbacks(execute=True):
        runs, _ = run_submit_batch(user=session.owner, requests=requests)

    assert calls == [3]  # one pipeline of three calls
    for run in runs:
        ((event_id, kind, data),) = _history(events.run_channel(run.pk))
        assert (event_id, kind, data["run"], data["status"]) == (1, "status", str(run.pk), "queued")
    session_events = _history(events.session_channel(session.pk))
    assert [event_id for event_id, _, _ in session_events] == [1, 2, 3, 4, 5]
    assert [data["run"] for _, _, data in session_events] == [str(run.pk) for run in runs]


class _RolledBack(Exception):
    pass


@pytest.mark.django_db
def test_nothing_is_published_for_a_transaction_that_rolls_back(
    session, sent, django_capture_on_commit_callbacks
):
    stored: list[Run] = []
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(_RolledBack):
        with transaction.atomic():
            stored.append(
                run_submit(user=session.owner, session_id=session.pk, kind="sleep", payload={"seconds": 1})[0]
            )
            raise _RolledBack
    assert _history(events.run_channel(stored[0].pk)) == [] and sent == []


@pytest.mark.django_db
def test_an_unreachable_events_redis_never_fails_a_run(
    session, sent, settings, django_capture_on_commit_callbacks
):
    settings.EVENTS_REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    with django_capture_on_commit_callbacks(execute=True):
        run, created = run_submit(
            user=session.owner, session_id=session.pk, kind="sleep", payload={"seconds": 1}
        )
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = run_cancel(user=session.owner, run_id=run.pk)
    assert created and cancelled.status == "cancelled" and sent == [run.pk]


# --- the API's refusals -----------------------------------------------------------------------


@pytest.mark.django_db
def test_streams_need_credentials_and_scope_to_the_owner(api, other_api, session):
    run = Run.objects.create(owner=session.owner, session=session, kind="sleep", queue="cpu")
    for url in (f"/api/v1/runs/{run.pk}/events", f"/api/v1/sessions/{session.pk}/events"):
        anonymous = APIClient().get(url, HTTP_ACCEPT="text/event-stream")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "not_authenticated"
        foreign = other_api.get(url, HTTP_ACCEPT="text/event-stream")
        assert foreign.status_code == 404 and foreign["Content-Type"] == "application/json"
        assert foreign.json()["error"]["code"] == "not_found"
        resumed = api.get(url, HTTP_LAST_EVENT_ID="seven")
        assert resumed.status_code == 400
        assert list(resumed.json()["error"]["fields"]) == ["Last-Event-ID"]


# --- streams from a real server ---------------------------------------------------------------


def _open(port: int, path: str, token: str, last_event_id: int | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=STREAM_TIMEOUT)
    headers = {"Authorization": f"Token {token}", "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    assert response.status == 200, response.read()
    assert response.getheader("Content-Type").startswith("text/event-stream")
    return response


def _events(response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    """Parsed events (heartbeats included) until the server ends the stream."""
    event: dict[str, Any] = {}
    deadline = time.monotonic() + STREAM_TIMEOUT
    while line := response.readline():
        assert time.monotonic() < deadline, "the stream did not end"
        line = line.decode().rstrip("\n")
        if not line:
            if "event" in event:
                yield event
            event = {}
            continue
        name, _, value = line.partition(": ")
        if name == "id":
            event["id"] = int(value)
        elif name == "event":
            event["event"] = value
        elif name == "data":
            event["data"] = json.loads(value)


def _post(port: int, path: str, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (local URL)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_run_stream_follows_a_sleep_run_to_its_end_and_resumes(
    start_server: Callable[..., int], start_worker, user
):
    worker = start_worker("events", wait=False)
    port = start_server()
    token = Token.objects.create(user=user).key
    session = session_create(owner=user, name="live")
    status, body = _post(
        port, "/api/v1/runs", token, {"session": str(session.pk), "kind": "sleep", "payload": {"seconds": 2}}
    )
    assert status == 201, body
    run_id = body["id"]

    received = list(_events(_open(port, f"/api/v1/runs/{run_id}/events", token)))
    worker.wait_ready()  # (it ran the run: the stream above ended only after the final status)

    first, last = received[0], received[-1]
    assert first["event"] == "status" and first["data"]["action"] == "snapshot"
    assert first["data"]["status"] in {"queued", "running"} and first["data"]["run"] == run_id
    assert (last["event"], last["data"]["status"], last["data"]["final"]) == ("status", "succeeded", True)
    assert last["data"]["progress"] == 1.0 and last["data"]["attempts"] == 1
    statuses = [event["data"]["status"] for event in received if event["event"] == "status"]
    assert "running" in statuses
    progress = [event["data"]["progress"] for event in received if event["event"] == "progress"]
    assert any(0.0 < value < 1.0 for value in progress), progress  # it moved, not just ended
    assert progress == sorted(progress)
    ids = [event["id"] for event in received if "id" in event]
    assert ids == sorted(ids) and len(set(ids[1:])) == len(ids) - 1
    assert Run.objects.get(pk=run_id).status == "succeeded"

    # resuming after a mid-run event: the stored status events after it, then the current state
    middle = next(event["id"] for event in received if event["event"] == "progress")
    resumed = list(_events(_open(port, f"/api/v1/runs/{run_id}/events", token, last_event_id=middle)))
    assert all(event["id"] > middle for event in resumed)
    assert [event["event"] for event in resumed] == ["status", "status"]
    assert [event["data"]["status"] for event in resumed] == ["succeeded", "succeeded"]
    assert resumed[-1]["data"]["action"] == "snapshot" and resumed[-1]["id"] == last["id"]

    # a run that already ended: one status event, and the stream ends
    again = list(_events(_open(port, f"/api/v1/runs/{run_id}/events", token)))
    assert [(event["event"], event["data"]["status"]) for event in again] == [("status", "succeeded")]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_without_redis_a_stream_polls_the_database(start_server: Callable[..., int], user):
    port = start_server(EVENTS_REDIS_URL="", EVENTS_POLL_SECONDS="0.2")
    token = Token.objects.create(user=user).key
    session = session_create(owner=user, name="polled")
    _, body = _post(
        port, "/api/v1/runs", token, {"session": str(session.pk), "kind": "sleep", "payload": {"seconds": 5}}
    )
    stream = _events(_open(port, f"/api/v1/runs/{body['id']}/events", token, last_event_id=41))
    snapshot = next(stream)
    assert (snapshot["id"], snapshot["data"]["status"]) == (42, "queued")  # ids go on from the client's

    assert _post(port, f"/api/v1/runs/{body['id']}/cancel", token, {})[0] == 202
    rest = list(stream)
    assert [(event["id"], event["data"]["status"], event["data"]["final"]) for event in rest] == [
        (43, "cancelled", True)
    ]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_hundred_open_streams_hold_no_worker_and_each_hears_every_submission(
    start_server: Callable[..., int], user
):
    # one web worker process: a server that gave each stream a worker or a thread would
    # stop answering here
    port = start_server(workers=1)
    token = Token.objects.create(user=user).key
    session = session_create(owner=user, name="busy")
    request = (
        f"GET /api/v1/sessions/{session.pk}/events HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Token {token}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()

    async def scenario() -> tuple[list[float], list[bytes], list[str]]:
        streams = []
        for _ in range(100):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            streams.append((reader, writer))
        received = [b""] * len(streams)

        async def read_until(index: int, needle: bytes) -> None:
            reader = streams[index][0]
            while needle not in received[index]:
                chunk = await reader.read(65536)
                assert chunk, "the server closed a stream"
                received[index] += chunk

        async with asyncio.timeout(STREAM_TIMEOUT):
            await asyncio.gather(*(read_until(index, b"retry: ") for index in range(len(streams))))
            latencies, run_ids = [], []
            for _ in range(5):
                started = time.monotonic()
                status, body = await asyncio.to_thread(
                    _post,
                    port,
                    "/api/v1/runs",
                    token,
                    {"session": str(session.pk), "kind": "sleep", "payload": {"seconds": 1}},
                )
                latencies.append(time.monotonic() - started)
                assert status == 201, body
                run_ids.append(body["id"])
            for run_id in run_ids:
                await asyncio.gather(*(read_until(index, run_id.encode()) for index in range(len(streams))))
        for _, writer in streams:
            writer.close()
        return latencies, received, run_ids

    latencies, received, run_ids = asyncio.run(scenario())
    # answered while 100 streams stayed open on the one worker (a generous bound: a server that
    # held a worker per stream would not answer at all)
    assert max(latencies) < 10.0, latencies
    for stream in received:
        assert stream.startswith(b"HTTP/1.1 200") and b"text/event-stream" in stream
        assert all(run_id.encode() in stream for run_id in run_ids)
