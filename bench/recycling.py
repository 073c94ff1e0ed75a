"""What recycling prefork children by task count costs short runs.

    .venv/bin/python bench/recycling.py [--runs 1200] [--every 100] [--rounds 2] [--concurrency 2]

One-a-message `echo` runs (as single submissions send them), executed by `celery -A config
worker` (prefork) started with WORKER_MAX_TASKS_PER_CHILD=<every> and, in alternate rounds,
with 0 (never recycled); timed from the first submission until every run is `succeeded`, as
bench/e2e.py times them, against PostgreSQL and Redis on 127.0.0.1. The difference, divided by
the replacements, is what one replacement costs the pool.
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
from bench.e2e import limitgraph_round, owner_and_session, prepare, start_worker, stop  # noqa: E402
from bench.stack import stack, wait_for_warm_up  # noqa: E402

DATABASE = "limitgraph_bench_recycling"


def timed_round(runs: int, every: int, concurrency: int, user, session) -> float:
    """Seconds for `runs` one-a-message runs on a fresh worker recycling every `every` tasks."""
    os.environ["WORKER_MAX_TASKS_PER_CHILD"] = str(every)
    logs = Path("var/bench-recycling")
    logs.mkdir(parents=True, exist_ok=True)
    worker = start_worker("config", ["cpu", "control"], concurrency, logs / f"worker-{every}.log")
    try:
        time.sleep(5)
        wait_for_warm_up(psutil.Process(worker.pid))
        rate = limitgraph_round(runs, user, session, per_message=1)
    finally:
        stop(worker)
    return runs / rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1200)
    parser.add_argument("--every", type=int, default=100, help="tasks per child before it is replaced")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    seconds: dict[int, list[float]] = {args.every: [], 0: []}
    with stack(embedded=False, database=DATABASE) as backends:
        prepare(backends)
        user, session = owner_and_session("bench")
        for _ in range(args.rounds):
            for every in (args.every, 0):
                seconds[every].append(timed_round(args.runs, every, args.concurrency, user, session))

    recycled, never = statistics.median(seconds[args.every]), statistics.median(seconds[0])
    replacements = args.runs // args.every
    print(
        f"\n{args.runs} one-a-message echo runs, {args.concurrency} prefork processes, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}\n"
    )
    print("| children replaced | seconds (median) | rounds |\n|---|---|---|")
    for every, values in seconds.items():
        label = f"every {every} tasks" if every else "never"
        print(f"| {label} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")
    print(
        f"\nabout {replacements} replacements cost {recycled - never:.1f} s of the whole pool: "
        f"{(recycled - never) / replacements * args.concurrency:.2f} s of one process each"
    )


if __name__ == "__main__":
    main()
