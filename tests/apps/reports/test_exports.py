"""Exports of a run, trace or session: JSON (complete, loss-free), CSV, Markdown and bundles
checked offline; streamed, named, owner-scoped."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import datetime

import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command
from django.test import AsyncClient
from rest_framework.authtoken.models import Token

from apps.reports.exports import md
from apps.runs.models import Run
from apps.sessions.services import session_create
from apps.traces.services import trace_create
from limitgraph_cli.bundle import chain_problem, verify_bundle
from tests.apps.reports.finished_runs import finished, rd_sweep

pytestmark = pytest.mark.django_db

ECHO_PAYLOAD = {"message": "héllo wörld", "values": [0.1, 1e-300, 2.5], "nested": {"deep": [1, {"x": None}]}}


@pytest.fixture
def filled(user):
    session = session_create(owner=user, name="<b>weekly</b> | sweep")
    echo = finished(user, session, "echo", ECHO_PAYLOAD, {"echo": ECHO_PAYLOAD, "ratio": 1 / 3})
    sweep = rd_sweep(user, session)
    loose = trace_create(user=user, session_id=session.pk, inputs={"note": "by hand"})
    return session, echo, sweep, loose


def body(response) -> bytes:
    assert response.status_code == 200, response.content
    assert response.streaming
    return b"".join(response.streaming_content)


def test_json_export_of_a_session_is_complete_and_loss_free(api, filled):
    # given a session with an echo run, an rd_sweep run and a trace of its own
    session, echo, sweep, loose = filled

    # when
    response = api.post(
        "/api/v1/artifacts/export", {"session": str(session.pk), "format": "json"}, format="json"
    )

    # then
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="limitgraph-session-{session.pk}.json"'
    document = json.loads(body(response))
    assert document["format"] == "limitgraph.export" and document["scope"] == {
        "type": "session",
        "id": str(session.pk),
    }
    assert document["session"]["name"] == session.name
    runs = {run["id"]: run for run in document["runs"]}
    assert set(runs) == {str(echo.pk), str(sweep.pk)}
    exported = runs[str(echo.pk)]
    assert exported["payload"] == echo.payload and exported["result"] == echo.result
    assert exported["result"]["ratio"] == 1 / 3  # floats exact
    for field in ("created_at", "started_at", "finished_at"):
        assert datetime.fromisoformat(exported[field]) == getattr(echo, field)
    assert exported["duration_seconds"] == echo.duration_seconds and exported["status"] == "succeeded"
    # the trace, with a provenance chain that verifies from the export alone
    trace = exported["trace"]
    assert trace["id"] == str(echo.trace.pk) and trace["entry_count"] == echo.trace.entry_count >= 3
    assert chain_problem({**trace, "trace": trace["id"], "entries": trace["provenance"]}) is None
    curve = runs[str(sweep.pk)]["rd_curve"]
    assert curve["knee_level"] == 2 and [p["level"] for p in curve["points"]] == [1, 2, 4]
    assert [t["id"] for t in document["traces"]] == [str(loose.pk)]
    # re-encoding gives the same document: nothing in it is lossy or non-JSON
    assert json.loads(json.dumps(document)) == document


def test_a_withheld_result_is_not_exported(api, filled):
    session, echo, _, _ = filled
    Run.objects.filter(pk=echo.pk).update(result_withheld=True)

    document = json.loads(body(api.get(f"/api/v1/runs/{echo.pk}/export", {"format": "json"})))
    rows = list(
        csv.DictReader(io.StringIO(body(api.get(f"/api/v1/runs/{echo.pk}/export?format=csv")).decode()))
    )
    report = body(api.get(f"/api/v1/runs/{echo.pk}/export?format=markdown")).decode()

    assert document["runs"][0]["result"] is None and document["runs"][0]["result_withheld"] is True
    assert (
        rows[0]["result"] == ""
        and "Result withheld for review." in report
        and "héllo" not in rows[0]["result"]
    )


def test_csv_has_one_row_per_run_or_per_rd_point(api, filled):
    session, echo, sweep, _ = filled

    response = api.get(f"/api/v1/sessions/{session.pk}/export", {"format": "csv"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].endswith(f'filename="limitgraph-session-{session.pk}.csv"')
    runs = list(csv.DictReader(io.StringIO(body(response).decode())))
    points = list(
        csv.DictReader(
            io.StringIO(
                body(api.get(f"/api/v1/sessions/{session.pk}/export?format=csv&table=rd_points")).decode()
            )
        )
    )

    assert [row["id"] for row in runs] == [str(echo.pk), str(sweep.pk)]
    assert json.loads(runs[0]["payload"]) == ECHO_PAYLOAD and runs[0]["trace"] == str(echo.trace.pk)
    assert [(row["run"], row["level"], row["is_knee"]) for row in points] == [
        (str(sweep.pk), "1", "False"),
        (str(sweep.pk), "2", "True"),
        (str(sweep.pk), "4", "False"),
    ]


def test_markdown_report_has_tables_and_links_the_rd_plot(api, filled):
    session, echo, sweep, _ = filled

    report = body(api.get(f"/api/v1/sessions/{session.pk}/export", {"format": "markdown"})).decode()

    assert report.startswith("# limitgraph report: session \\<b\\>weekly\\</b\\> \\| sweep\n")  # no raw HTML
    assert f"| `{echo.pk}` | echo | succeeded |" in report
    assert f"](http://testserver/api/v1/plots/rd?run={sweep.pk}&format=svg)" in report
    assert "| 2 | 0.41 | 0.125 | knee |" in report
    assert '"message": "héllo wörld"' in report  # the run's payload, in a fenced JSON block


def test_markdown_cells_cannot_break_out():
    assert md("a|b\n<script>`x`</script>") == "a\\|b \\<script\\>\\`x\\`\\</script\\>"


def test_bundle_verifies_offline_and_names_what_changed(api, filled, tmp_path):
    # given a session's bundle
    session, echo, sweep, loose = filled
    response = api.post(
        "/api/v1/artifacts/export", {"session": str(session.pk), "format": "bundle"}, format="json"
    )
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].endswith(f'filename="limitgraph-session-{session.pk}.zip"')
    path = tmp_path / "bundle.zip"
    path.write_bytes(body(response))
    names = set(zipfile.ZipFile(path).namelist())
    traces = {echo.trace.pk, sweep.trace.pk, loose.pk}
    assert {"export.json", "report.md", "runs.csv", "rd_points.csv", "manifest.json"} <= names
    assert {f"provenance/{trace}.json" for trace in traces} <= names

    # then it verifies, by the management command and by the client's checker
    out = io.StringIO()
    call_command("verify_bundle", str(path), stdout=out)
    assert out.getvalue().startswith("OK:") and verify_bundle(str(path)).valid

    # when one file is changed, it is named
    changed = tmp_path / "changed.zip"
    rewrite(path, changed, {"runs.csv": b"id\nforged\n"})
    errors = io.StringIO()
    with pytest.raises(CommandError):
        call_command("verify_bundle", str(changed), stderr=errors)
    assert errors.getvalue().strip() == "changed: runs.csv"

    # and a provenance file rewritten with a manifest to match still fails its chain
    provenance = f"provenance/{echo.trace.pk}.json"
    document = json.loads(zipfile.ZipFile(path).read(provenance))
    document["entries"][0]["data"]["kind"] = "forged"
    forged_bytes = json.dumps(document).encode()
    manifest = json.loads(zipfile.ZipFile(path).read("manifest.json"))
    manifest["files"][provenance] = {"sha256": sha256(forged_bytes), "size": len(forged_bytes)}
    forged = tmp_path / "forged.zip"
    rewrite(path, forged, {provenance: forged_bytes, "manifest.json": json.dumps(manifest).encode()})
    report = verify_bundle(str(forged))
    assert not report.valid and report.changed == [] and list(report.broken_chains) == [provenance]
    assert "entry 1: hash does not match" in report.broken_chains[provenance]


def sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def rewrite(source, target, replacements: dict[str, bytes]) -> None:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info.filename, replacements.get(info.filename, old.read(info.filename)))


def test_trace_scope_exports_a_runs_trace_with_its_run_or_a_trace_alone(api, filled):
    _, echo, _, loose = filled

    with_run = json.loads(body(api.get(f"/api/v1/traces/{echo.trace.pk}/export")))
    alone = json.loads(body(api.post("/api/v1/artifacts/export", {"trace": str(loose.pk)}, format="json")))

    assert [run["id"] for run in with_run["runs"]] == [str(echo.pk)] and with_run["traces"] == []
    assert alone["runs"] == [] and [trace["inputs"] for trace in alone["traces"]] == [{"note": "by hand"}]


def test_exports_are_scoped_to_their_owner_and_check_their_input(api, other_api, filled, client):
    session, echo, _, _ = filled
    for scope, object_id in (("run", echo.pk), ("trace", echo.trace.pk), ("session", session.pk)):
        foreign = other_api.post("/api/v1/artifacts/export", {scope: str(object_id)}, format="json")
        assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "not_found"
        assert other_api.get(f"/api/v1/{scope}s/{object_id}/export").status_code == 404
    assert client.get(f"/api/v1/runs/{echo.pk}/export").status_code == 401

    for bad in (
        {},
        {"run": str(echo.pk), "session": str(session.pk)},
        {"run": str(echo.pk), "format": "pdf"},
        {"run": str(echo.pk), "format": "json", "table": "runs"},
        {"run": "not-a-uuid"},
    ):
        response = api.post("/api/v1/artifacts/export", bad, format="json")
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid", bad
    assert api.get(f"/api/v1/runs/{echo.pk}/export?format=xlsx").status_code == 400


def test_an_asgi_server_gets_the_export_as_an_async_stream(user, filled):
    # Under ASGI a sync iterator would be read whole before the first byte went out.
    session, echo, _, _ = filled
    token = Token.objects.create(user=user)

    async def export():
        response = await AsyncClient().get(
            f"/api/v1/sessions/{session.pk}/export",
            {"format": "csv"},
            headers={"Authorization": f"Token {token.key}"},
        )
        return response, [chunk async for chunk in response.streaming_content]

    response, chunks = async_to_sync(export)()

    assert response.status_code == 200 and response.is_async
    assert str(echo.pk) in b"".join(chunks).decode()
