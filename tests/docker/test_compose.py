"""Docker cannot run here: check the compose file and images by reading them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from apps.core.queues import ALL_QUEUES

DOCKER = Path(__file__).resolve().parents[2] / "docker"
REQUIRED_SERVICES = {
    "postgres",
    "redis",
    "web",
    "worker-cpu",
    "worker-inference",
    "worker-gpu",
    "beat",
    "flower",
    "prometheus",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _command(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def test_has_every_service(compose):
    assert REQUIRED_SERVICES <= set(compose["services"])


def test_builds_point_at_existing_dockerfiles(compose):
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            assert (DOCKER / build["context"] / build["dockerfile"]).resolve().is_file(), name


def test_app_services_use_the_project_entry_points(compose):
    services = compose["services"]
    # the ASGI application under uvicorn workers: slow clients hold sockets, not workers
    assert _command(services["web"]) == "gunicorn -c config/gunicorn.py config.asgi"
    assert (DOCKER.parent / "config" / "gunicorn.py").is_file()
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert 'CMD ["gunicorn", "-c", "config/gunicorn.py", "config.asgi"]' in dockerfile
    for name in ("worker-cpu", "worker-inference", "beat", "flower"):
        assert _command(services[name]).startswith("celery -A config"), name
    # the GPU pool launcher starts the celery workers itself, one per card
    assert _command(services["worker-gpu"]).startswith("python -m workers.gpu")
    for name in ("web", "worker-cpu", "worker-gpu", "beat"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert "SECRET_KEY" in env


def test_every_queue_has_a_consumer(compose):
    consumed: set[str] = set()
    for service in compose["services"].values():
        match = re.search(r"--queues (\S+)", _command(service))
        if match:
            consumed |= set(match.group(1).split(","))
        if _command(service).startswith("python -m workers.gpu"):
            consumed.add("gpu")  # and gpu.<index> per card (workers.gpu.worker_command)
    assert consumed == set(ALL_QUEUES)


def test_gpu_workers_reserve_the_gpus_and_never_fork(compose):
    worker = compose["services"]["worker-gpu"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "--pool threads" in _command(worker) or "--pool solo" in _command(worker)
    inference = _command(compose["services"]["worker-inference"])
    assert "--queues inference" in inference and "--pool threads" in inference
    assert worker["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    assert (DOCKER / "Dockerfile.gpu").read_text().startswith("#") and "nvidia/cuda:12" in (
        DOCKER / "Dockerfile.gpu"
    ).read_text()


def test_prometheus_scrapes_the_web_metrics(compose):
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == ["web:8000"]
    # /metrics is not public: Prometheus sends the web's METRICS_BEARER_TOKEN, from a secret
    assert job["authorization"]["type"] == "Bearer"
    secret = job["authorization"]["credentials_file"]
    assert (
        secret == "/run/secrets/metrics_token"
        and "metrics_token" in compose["services"]["prometheus"]["secrets"]
    )
    assert compose["secrets"]["metrics_token"] == {"environment": "METRICS_BEARER_TOKEN"}
    assert "METRICS_BEARER_TOKEN" in compose["services"]["web"]["environment"]["METRICS_BEARER_TOKEN"]
    dashboard = json.loads((DOCKER / "grafana" / "dashboards" / "limitgraph.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in (
        "limitgraph_http_requests_total",
        "limitgraph_runs_finished_total",
        "limitgraph_queue_depth",
        "limitgraph_gpu_memory_used_bytes",
        "limitgraph_gpu_utilization_ratio",
        "limitgraph_worker_runs_in_flight",
        "limitgraph_queue_backpressure",
        "limitgraph_backpressure_refusals_total",
    ):
        assert metric in exprs


def test_flower_takes_its_login_from_the_environment_not_its_arguments(compose):
    flower = compose["services"]["flower"]
    assert "basic-auth" not in _command(flower) and "basic_auth" not in _command(flower)
    assert "FLOWER_BASIC_AUTH" in flower["environment"]["FLOWER_BASIC_AUTH"]
    # the image's working directory holds flowerconfig.py, which Flower loads by default
    assert "WORKDIR /app" in (DOCKER / "Dockerfile").read_text()
    assert (DOCKER.parent / "flowerconfig.py").is_file()


def test_workers_recycle_and_outlast_their_bounded_shutdown(compose):
    for name, service in compose["services"].items():
        if not name.startswith("worker-"):
            continue
        env = service["environment"]
        for variable in ("WORKER_MAX_MEMORY_PER_CHILD_MB", "WORKER_MAX_TASKS_PER_CHILD"):
            assert variable in env[variable], (name, variable)  # passed through, with a default
        grace = int(re.search(r":-(\d+)", env["WORKER_SHUTDOWN_GRACE_SECONDS"]).group(1))
        # docker stop's SIGKILL comes after the grace and the forced exit (10 s), not before
        assert int(service["stop_grace_period"].rstrip("s")) > grace + 10, name
