"""`limitgraph` as a subprocess against a live server: login, submit (--follow with a real
worker, Ctrl-C), status, result, cancel, ls, export, verify and flags, with exit codes a
script can trust."""

from __future__ import annotations

import json
import os
import signal
import stat
import uuid
import zipfile

import pytest

from apps.artifacts.services import artifact_put
from apps.runs.models import Run
from apps.sessions.services import session_create
from limitgraph_cli.errors import ExitCode
from tests.apps.reports.finished_runs import finished, rd_sweep
from tests.conftest import client_for
from tests.limitgraph_cli.conftest import key_for
from tests.workers.conftest import wait_for_run

pytestmark = pytest.mark.django_db(transaction=True)


def ok(done):
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    return done


def out_json(done):
    return json.loads(ok(done).stdout)


def test_login_keeps_the_key_private_and_later_commands_use_it(bare_cli, live_server, user):
    key = key_for(user)
    config = bare_cli.cwd.parent / "home" / ".config" / "limitgraph" / "config.json"

    refused = bare_cli("login", "--url", f"{live_server.url}/api/v1/", input="lg_wrong_key\n")
    assert refused.returncode == ExitCode.AUTH and not config.exists()

    ok(bare_cli("login", "--url", f"{live_server.url}/api/v1/", input=f"{key}\n"))
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text()) == {"url": live_server.url, "api_key": key}

    # no environment needed now; the first submit makes a session and remembers it
    (bare_cli.cwd / "payload.json").write_text('{"note": "hello"}')
    first = out_json(bare_cli("--json", "submit", "echo", "--payload", "payload.json"))
    second = out_json(bare_cli("submit", "echo", "--payload", "payload.json", "--json"))
    assert first["session"] == second["session"] == json.loads(config.read_text())["session"]
    assert Run.objects.get(pk=first["id"]).session.name == "cli"
    table = ok(bare_cli("ls")).stdout
    assert first["id"] in table and second["id"] in table and "echo" in table


def test_exit_codes(cli, user):
    unknown = str(uuid.uuid4())
    assert cli("status", unknown).returncode == ExitCode.NOT_FOUND
    as_json = cli("--json", "status", unknown)
    error = json.loads(as_json.stderr)
    assert as_json.returncode == 4 and error["exit_code"] == 4 and error["error"]["code"] == "not_found"

    (cli.cwd / "p.json").write_text("{}")
    refused = cli("submit", "no_such_kind", "--payload", "p.json")
    assert refused.returncode == ExitCode.REFUSED and "Unknown run kind 'no_such_kind'" in refused.stderr
    assert cli("submit", "echo", "--payload", "missing.json").returncode == ExitCode.USAGE
    assert cli("submit", "echo", "--payload", "-", input="not json").returncode == ExitCode.USAGE
    assert cli("submit", "echo").returncode == ExitCode.USAGE  # argparse: --payload is required
    assert cli("ls", LIMITGRAPH_API_KEY=None).returncode == ExitCode.AUTH
    assert cli("ls", LIMITGRAPH_API_KEY="lg_00000000_wrong").returncode == ExitCode.AUTH
    assert cli("ls", "--url", "http://127.0.0.1:9").returncode == ExitCode.UNAVAILABLE


def test_cancel_result_and_follow_without_a_worker(cli, user):
    session = session_create(owner=user, name="waiting")
    env = {"LIMITGRAPH_SESSION": str(session.pk)}
    run = out_json(cli("--json", "submit", "sleep", "--payload", "-", input='{"seconds": 30}', **env))
    assert run["status"] == "queued" and run["session"] == str(session.pk)

    # no worker: following gives up at --timeout (polling: this server has no event stream yet)
    timed_out = cli("status", run["id"], "--follow", "--timeout", "1.5")
    assert timed_out.returncode == ExitCode.NOT_FINISHED and "still queued" in timed_out.stderr
    assert cli("result", run["id"]).returncode == ExitCode.NOT_FINISHED

    cancelled = out_json(cli("cancel", run["id"], "--json"))
    assert cancelled["status"] == "cancelled"
    assert cli("result", run["id"]).returncode == ExitCode.RUN_FAILED
    again = cli("cancel", run["id"])
    assert again.returncode == ExitCode.REFUSED and "cancelled" in again.stderr
    assert cli("status", run["id"], "--follow").returncode == ExitCode.RUN_FAILED
    assert ok(cli("status", run["id"])).stdout.splitlines()[1].split()[:2] == ["status", "cancelled"]


@pytest.mark.integration
def test_submit_follow_shows_progress_until_the_run_ends(cli, start_worker):
    start_worker()

    done = cli("--json", "submit", "sleep", "--payload", "-", "--follow", input='{"seconds": 1.5}')

    run = out_json(done)
    assert run["status"] == "succeeded" and run["progress"] == 1.0
    lines = done.stderr.splitlines()
    assert any(line.startswith(f"{run['id']}: running ") for line in lines), lines
    assert lines[-1] == f"{run['id']}: succeeded 100%"
    assert out_json(cli("result", run["id"]))["slept_seconds"] >= 1.5
    assert run["id"] in [row["id"] for row in out_json(cli("ls", "--status", "succeeded", "--json"))]


@pytest.mark.integration
def test_ctrl_c_while_following_asks_and_cancels_the_run(cli, start_worker):
    start_worker()
    (cli.cwd / "long.json").write_text('{"seconds": 60}')
    process = cli.popen("submit", "sleep", "--payload", "long.json", "--follow")
    try:
        # the client prints a line per status change (stderr is not a terminal here)
        seen = []
        while not any(": running" in line for line in seen):
            line = process.stderr.readline()
            assert line, (process.poll(), seen)
            seen.append(line)
        run_id = seen[-1].split(":")[0]

        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(input="y\n", timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == ExitCode.INTERRUPTED, stderr
    assert f"Cancel run {run_id}? [y/N]" in stderr and "cancel requested" in stderr
    wait_for_run(run_id, {"cancelled"})


def test_export_to_files_and_verify_bundles_offline(cli, user):
    session = session_create(owner=user, name="exported")
    echo = finished(user, session, "echo", {"word": "plain"}, {"word": "plain"})
    rd_sweep(user, session)

    ok(cli("export", "--session", str(session.pk), "--format", "bundle"))
    bundle = cli.cwd / f"limitgraph-session-{session.pk}.zip"
    verified = ok(cli("verify", str(bundle)))
    assert verified.stdout.startswith("OK:")

    tampered = cli.cwd / "tampered.zip"
    with zipfile.ZipFile(bundle) as old, zipfile.ZipFile(tampered, "w") as new:
        for info in old.infolist():
            data = old.read(info.filename)
            new.writestr(
                info.filename, data.replace(b"plain", b"PLAIN") if info.filename == "export.json" else data
            )
    failed = cli("verify", str(tampered))
    assert failed.returncode == ExitCode.VERIFY_FAILED and failed.stderr.strip() == "changed: export.json"
    report = json.loads(cli("verify", str(tampered), "--json").stdout)
    assert report["valid"] is False and report["changed"] == ["export.json"]
    assert cli("verify", "no-such.zip").returncode == ExitCode.USAGE

    document = out_json(cli("export", "--run", str(echo.pk)))
    assert [run["result"] for run in document["runs"]] == [{"word": "plain"}]
    saved = out_json(
        cli("--json", "export", "--session", str(session.pk), "--format", "csv", "-o", "runs.csv")
    )
    assert saved["file"] == "runs.csv" and saved["size"] == (cli.cwd / "runs.csv").stat().st_size
    assert (cli.cwd / "runs.csv").read_text().startswith("id,session,kind,status,")
    assert cli("export", "--run", str(uuid.uuid4())).returncode == ExitCode.NOT_FOUND


def test_result_saves_the_runs_artifact_or_its_json(cli, user):
    session = session_create(owner=user, name="files")
    run = finished(user, session, "echo", {"n": 1}, {"n": 1})
    data = os.urandom(200_000)
    artifact_put(owner=user, session=session, name="plan.bin", data=data, run=run)
    plain = finished(user, session, "echo", {"n": 2}, {"n": 2})

    saved = out_json(cli("--json", "result", str(run.pk), "--output", "plan.bin"))
    assert (cli.cwd / "plan.bin").read_bytes() == data and saved["size"] == len(data)
    ok(cli("result", str(plain.pk), "-o", "result.json"))
    assert json.loads((cli.cwd / "result.json").read_text()) == {"n": 2}
    assert cli("result", str(run.pk), "-o", "x", "--artifact", "nope").returncode == ExitCode.NOT_FOUND


def test_flags_of_a_trace_and_the_review_queue(cli, user, reviewer):
    session = session_create(owner=user, name="flagged")
    run = finished(user, session, "echo", {"text": "an ordinary sentence"}, {})
    flagged = client_for(user).post(
        "/api/v1/governance/flag",
        {"trace": str(run.trace.pk), "flag": "unsafe", "severity": 8, "reason": "odd output"},
        format="json",
    )
    assert flagged.status_code == 201, flagged.json()

    flags = out_json(cli("flags", str(run.trace.pk), "--json"))
    assert [(flag["flag"], flag["severity"], flag["reason"]) for flag in flags] == [
        ("unsafe", 8, "odd output")
    ]
    assert "odd output" in ok(cli("flags", str(run.trace.pk))).stdout
    assert cli("flags", "--queue").returncode == ExitCode.AUTH  # submitters have no queue
    queue = out_json(cli("flags", "--queue", "--json", LIMITGRAPH_API_KEY=key_for(reviewer)))
    assert str(run.trace.pk) in [review["trace"] for review in queue]
