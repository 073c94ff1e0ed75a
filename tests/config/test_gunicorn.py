"""The web server as deployed: gunicorn with several workers, metrics summed across them."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.workers.conftest import ROOT, process_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (local URL)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_gunicorn_counts_requests_across_its_workers(tmp_path: Path):
    port = _free_port()
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "stale_from_a_previous_run.db").write_bytes(b"garbage")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"],
        cwd=ROOT,
        env=process_env(
            GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="3", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _get(f"{base}/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        for _ in range(20):
            assert _get(f"{base}/health")[0] == 200
        status, text = _get(f"{base}/metrics")
        assert status == 200
        served = re.search(
            r'limitgraph_http_requests_total\{method="GET",status="200",view="health"\} (\S+)', text
        )
        assert served is not None, text[:2000]
        # 20 + the readiness polls: every worker's count is in the one scrape
        assert float(served.group(1)) >= 21
        assert not (metrics_dir / "stale_from_a_previous_run.db").exists()
    finally:
        server.terminate()
        server.wait(timeout=15)
