"""Where a request's CPU time goes, layer by layer: the bare endpoint, a submission, a batch.

    .venv/bin/python bench/submit_profile.py [--requests 300] [--paths bare,submit,batch]
        [--database limitgraph_bench] [--redis-db 3]

Runs Django's synchronous stack in this process (the test client through every middleware,
the same settings and services as bench/submit.py, against PostgreSQL and Redis), so it
leaves out the server and the event loop: bench/submit.py's CPU time per request in the web
workers, less this script's, is their share. Prints each path's CPU time per request (the
best of five chunks: the least disturbed by other load) and, from a profile on the thread's
CPU clock (which inflates every figure, small calls most), each layer's share of it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stack import stack  # noqa: E402
from bench.submit import BATCH, DATABASE, REDIS_DB, SETUP, environment  # noqa: E402

# (label, file suffix, function): a layer's time is its functions' cumulative time.
LAYERS = [
    ("authentication (token, API key: cached)", "rest_framework/views.py", "perform_authentication"),
    ("rate limit (Redis script)", "rest_framework/views.py", "check_throttles"),
    ("request and payload validation (DRF)", "rest_framework/serializers.py", "is_valid"),
    ("session lookup", "apps/sessions/selectors.py", "session_get_for_user"),
    ("governance input checks", "apps/runs/pipeline.py", "check_inputs"),
    ("store: run, trace, provenance rows (bulk inserts)", "apps/runs/services/submission.py", "_store"),
    ("batch row and idempotency fingerprint", "apps/runs/services/submission.py", "_fingerprint"),
    ("commit", "django/db/backends/base/base.py", "_commit"),
    ("publish to the broker (after commit)", "apps/runs/services/submission.py", "send_runs"),
    ("run events to Redis (after commit)", "apps/runs/events.py", "publish"),
    ("response: runs as JSON", "apps/runs/api/serializers.py", "run_json"),
    ("response: rendering", "rest_framework/renderers.py", "render"),
    ("bare view: one INSERT", "bench/submit_stack/urls.py", "post"),
]
TOTAL = ("django/core/handlers/base.py", "get_response")
VIEW = ("rest_framework/views.py", "dispatch")


def _cumulative(stats: dict, suffix: str, function: str) -> float:
    return sum(
        row[3] for (filename, _, name), row in stats.items() if name == function and filename.endswith(suffix)
    )


def profile(path: str, body: dict, requests: int, token: str) -> None:
    import cProfile
    import pstats

    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")
    data = json.dumps(body)

    def once() -> None:
        response = client.post(path, data, content_type="application/json")
        if response.status_code not in (200, 201):
            raise SystemExit(f"{path} answered {response.status_code}: {response.content[:300]!r}")

    for _ in range(5):
        once()
    chunks, walls = [], []
    for _ in range(5):
        started, wall = time.thread_time(), time.perf_counter()
        for _ in range(requests // 5):
            once()
        chunks.append((time.thread_time() - started) * 1000 / (requests // 5))
        walls.append((time.perf_counter() - wall) * 1000 / (requests // 5))
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    for _ in range(requests):
        once()
    profiler.disable()
    if os.environ.get("PROFILE_TOP") and path == os.environ.get("PROFILE_PATH", path):
        order = os.environ.get("PROFILE_SORT", "cumulative")  # or tottime
        pstats.Stats(profiler).sort_stats(order).print_stats(int(os.environ["PROFILE_TOP"]))
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = _cumulative(stats, *TOTAL)
    view = _cumulative(stats, *VIEW)
    median = sorted(chunks)[2]
    print(
        f"\n{path}: {min(chunks):.2f} ms CPU per request (best of 5 chunks; median {median:.2f}); "
        f"wall {sorted(walls)[2]:.2f} ms (median; the rest is waiting for PostgreSQL and Redis)"
    )
    print("| layer | share |\n|---|---|")
    print(f"| Django's handler and middleware (outside the view) | {100 * (total - view) / total:.0f} % |")
    accounted = 0.0
    for label, suffix, function in LAYERS:
        spent = _cumulative(stats, suffix, function)
        if spent:
            accounted += spent
            print(f"| {label} | {100 * spent / total:.0f} % |")
    print(
        f"| the rest of the view (DRF dispatch, parsing, the service's own code) | "
        f"{100 * (view - accounted) / total:.0f} % |"
    )


def child(requests: int, paths: list[str]) -> None:
    import django

    django.setup()
    token, session = os.environ["BENCH_CREDENTIALS"].split()
    print(f"# load average before: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if "bare" in paths:
        profile("/bench/bare", {"kind": "echo", "payload": {"a": 1}}, requests, token)
    if "submit" in paths:
        profile("/api/v1/runs", {"session": session, "kind": "echo", "payload": {"a": 1}}, requests, token)
    if "batch" in paths:
        batch = {"runs": [{"session": session, "kind": "echo", "payload": {"i": i}} for i in range(BATCH)]}
        profile("/api/v1/runs/batch", batch, max(10, requests // 20), token)
    print(f"\n# load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database", default=DATABASE, help="dropped and created afresh")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB, help="flushed at the end")
    parser.add_argument(
        "--paths",
        default="bare,submit,batch",
        help="which of bare, submit, batch to profile (comma-separated)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.requests, args.paths.split(","))
        return
    with stack(embedded=False, database=args.database) as backends:
        env = environment(0, backends, args.redis_db)
        # as config.asgi serves it: pooled connections, none kept by a thread
        env.update(DATABASE_POOL="1", CONN_MAX_AGE="0")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        env["BENCH_CREDENTIALS"] = subprocess.run(
            [sys.executable, "-c", SETUP], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        try:
            command = [
                sys.executable,
                __file__,
                "--child",
                "--requests",
                str(args.requests),
                "--paths",
                args.paths,
            ]
            subprocess.run(command, cwd=ROOT, env=env, check=True)
        finally:
            backends.flush(args.redis_db)


if __name__ == "__main__":
    main()
