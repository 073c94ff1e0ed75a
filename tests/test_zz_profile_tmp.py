import time
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db(transaction=True)


def test_profile_submit(api, session, monkeypatch):
    monkeypatch.setattr("apps.runs.services.submission.send_run", lambda run: True)
    body = {"session": str(session.pk), "kind": "echo", "payload": {"a": 1}}
    api.post("/api/v1/runs", body, format="json")
    with CaptureQueriesContext(connection) as ctx:
        t = time.perf_counter()
        r = api.post("/api/v1/runs", body, format="json")
        dt = time.perf_counter() - t
    print("\nstatus", r.status_code, "queries", len(ctx.captured_queries), "ms", dt * 1000)
    for q in ctx.captured_queries:
        print(q["sql"][:150])
    t = time.perf_counter()
    for _ in range(20):
        api.post("/api/v1/runs", body, format="json")
    print("per submit ms", (time.perf_counter() - t) / 20 * 1000)
