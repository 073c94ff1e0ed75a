"""The python sandbox's cost, in one run: a `print(1)` through the sandbox against a bare
`python -c` subprocess, then `python` runs per second through the platform.

Run from the repository root, against the PostgreSQL and Redis the tests use (a
throwaway database `test_<name>` is created and dropped; the broker database is
flushed)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/limitgraph \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/15 .venv/bin/python bench/sandbox.py

Part 1 times, in turn and `--repeats` times each, `subprocess.run([python, "-c",
"print(1)"])`, the same with `-I -S`, bwrap alone running `true`, the runner without bwrap
(mode "unsandboxed": rlimits, the init that measures the program, the supervisor), and
`Sandbox.run(code="print(1)")` (bubblewrap, the limits of a default run, the in-sandbox
init, a workspace handed to the run's uid and back); it prints the median and the 90th
percentile of each and the sandbox's overhead against both bare forms.

Part 2 starts one worker on the `sandbox` queue with `--concurrency` pool processes,
submits `--runs` print(1) runs through the run service (what POST /api/v1/runs calls)
into one session, then as many into one session each, and prints runs per second from
the first submission to the last success: one session's runs go one at a time (the
session's lock), separate sessions' runs in parallel.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("WORKER_HEARTBEAT_SECONDS", "1")


def _timed(action: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]


def _links() -> list[str]:
    """/bin, /lib* as the host has them (links into /usr on a merged-/usr system)."""
    args: list[str] = []
    for name in ("/bin", "/lib", "/lib64"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    return args


def overhead(repeats: int, interpreter: str) -> None:
    from workers.sandbox import Sandbox, limits_from_settings

    root = Path(tempfile.mkdtemp(prefix="lg-bench-", dir="/tmp"))
    os.chmod(root, 0o711)
    workspace = root / "session"
    workspace.mkdir(mode=0o700)
    sandbox = Sandbox(
        mode="bwrap",
        bwrap=shutil.which("bwrap"),
        interpreters={"python3": interpreter},
        state_dir=root / ".state",
    )
    weak = Sandbox(mode="unsandboxed", interpreters={"python3": interpreter}, state_dir=root / ".state-weak")
    limits = limits_from_settings(timeout_seconds=10.0, memory_mb=256)
    cases: dict[str, Callable[[], object]] = {
        "bare `python -c`": lambda: subprocess.run(
            [interpreter, "-c", "print(1)"], capture_output=True, check=True
        ),
        "bare `python -I -S -c`": lambda: subprocess.run(
            [interpreter, "-I", "-S", "-c", "print(1)"], capture_output=True, check=True
        ),
        "bwrap alone (`true`, no Python)": lambda: subprocess.run(
            [sandbox.bwrap, "--unshare-all", "--ro-bind", "/usr", "/usr", *_links(), "--", "/usr/bin/true"],
            check=True,
        ),
        "limits, init and supervision without bwrap (unsandboxed mode)": lambda: weak.run(
            code="print(1)", workspace_dir=workspace, limits=limits
        ),
        "sandbox": lambda: sandbox.run(code="print(1)", workspace_dir=workspace, limits=limits),
    }
    check = sandbox.run(code="print(1)", workspace_dir=workspace, limits=limits)
    assert check.stdout == "1\n" and check.exit_code == 0, check
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):  # interleaved, so a slow spell of a shared machine costs every case
        for name, action in cases.items():
            times[name] += _timed(action, 1)
    print(f"\nprint(1), {repeats} runs each, interleaved ({interpreter})")
    print("| case | median ms | p90 ms |")
    print("|---|---:|---:|")
    for name, measured in times.items():
        median, p90 = _summary(measured)
        print(f"| {name} | {median:.1f} | {p90:.1f} |")
    sandboxed = _summary(times["sandbox"])[0]
    for name in ("bare `python -c`", "bare `python -I -S -c`"):
        print(f"overhead against {name}: {sandboxed - _summary(times[name])[0]:.1f} ms (median)")
    shutil.rmtree(root, ignore_errors=True)


def throughput(runs: int, concurrency: int) -> None:
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection

    from apps.core.models import WorkerHeartbeat
    from apps.runs.models import Run
    from apps.runs.services import run_submit
    from apps.sessions.services import session_create

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    test_db = connection.creation.create_test_db(verbosity=0, keepdb=False)
    root = Path(tempfile.mkdtemp(prefix="lg-bench-ws-", dir="/tmp"))
    os.chmod(root, 0o711)
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{test_db}"
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{test_db}"
    env = {**os.environ, "DATABASE_URL": url, "RUN_WORKSPACE_ROOT": str(root)}
    hostname = f"bench-{os.getpid()}@bench"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "sandbox,control"]
        + ["--concurrency", str(concurrency), "--hostname", hostname, "--without-gossip", "--without-mingle"]
        + ["--loglevel", "WARNING"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not WorkerHeartbeat.objects.filter(hostname=hostname).exists():
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("the sandbox worker did not start")
            time.sleep(0.2)
        user = get_user_model().objects.create_user(username="bench", password="bench-unused-123")
        warm = session_create(owner=user, name="warm-up")
        _wait([run_submit(user=user, session_id=warm.pk, kind="python", payload={"code": "print(1)"})[0].pk])
        print(f"\n`python` runs through the platform: one worker, {concurrency} pool processes, {runs} runs")
        print("| sessions | runs/s | mean s per run, end to end |")
        print("|---|---:|---:|")
        for label, sessions in (
            ("one", [session_create(owner=user, name="one")] * runs),
            ("one per run", None),
        ):
            if sessions is None:
                sessions = [session_create(owner=user, name=f"s{i}") for i in range(runs)]
            started = time.perf_counter()
            ids = [
                run_submit(user=user, session_id=s.pk, kind="python", payload={"code": "print(1)"})[0].pk
                for s in sessions
            ]
            _wait(ids)
            elapsed = time.perf_counter() - started
            done = Run.objects.filter(pk__in=ids)
            assert all(r.status == "succeeded" and r.result["stdout"] == "1\n" for r in done), "a run failed"
            latency = statistics.mean((r.finished_at - r.created_at).total_seconds() for r in done)
            print(f"| {label} | {runs / elapsed:.1f} | {latency:.2f} |")
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=60)
        connection.creation.destroy_test_db(test_db, verbosity=0)
        shutil.rmtree(root, ignore_errors=True)


def _wait(ids: list[object]) -> None:
    from apps.runs.models import Run

    deadline = time.monotonic() + 600
    while Run.objects.filter(pk__in=ids, status__in=["pending", "queued", "running"]).exists():
        if time.monotonic() > deadline:
            raise SystemExit("runs did not finish in 10 minutes")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--interpreter", default="/usr/bin/python3")
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, {platform.platform()}, bwrap {shutil.which('bwrap')}")
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    overhead(args.repeats, args.interpreter)
    throughput(args.runs, args.concurrency)
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
