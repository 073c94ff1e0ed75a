"""Screen text-classifier variants on the validation splits, from the embedding cache (no bench run).

``python bench/governance_variants.py VARIANTS.json [NAME ...]``: VARIANTS.json maps a name to options
(``model``: "mlp" as train.py or "logreg"; ``C``; ``alpha``; ``hidden``; ``seeds``; ``weights``: "sqrt" as
train.py, "equal" or "count"; ``hard_mult``: the hand-written set's weight times this; ``blocks``: which
384-value blocks of the features, 0-3 = layers 2, 4, 6 mean-pooled, layer 6 max-pooled). Each variant is
trained four times (on all three sources and leaving each out), its thresholds chosen as train.py does
(train.thresholds_for on the training sources' validation first windows) at each target in TARGETS, and
scored like ``bench/governance.py --split validation`` (rules + model, every window of a prompt): one
line per variant and target, also appended to ``var/governance/variants.jsonl``. For choosing what
train.py should ship; the in-source rows are optimistic (their thresholds come from the same splits).
"""

from __future__ import annotations

import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apps.governance.detectors import corpus  # noqa: E402
from apps.governance.detectors.model import windows  # noqa: E402
from apps.governance.detectors.normalize import model_text  # noqa: E402
from apps.governance.detectors.train import (  # noqa: E402
    CACHE_DIR,
    WEAK_FLOOR,
    EmbeddingCache,
    Scored,
    _rule_evidence,
    first_window,
    thresholds_for,
)

PREPARED = CACHE_DIR / "variants-prepared.pkl"  # features and rule evidence of every prompt used here
RESULTS = CACHE_DIR / "variants.jsonl"
TARGETS = (0.0175, 0.0125)  # train.TARGET_FPR and a stricter one
BLOCK = 384


def prepare() -> dict[tuple[str, str], dict[str, Any]]:
    """Per (source, split): features (train: first window; validation: every window, ``owner`` = prompt),
    labels and rule evidence. Kept in PREPARED (delete it when the rules or the cache change)."""
    if PREPARED.exists():
        return pickle.loads(PREPARED.read_bytes())
    cache = EmbeddingCache()
    data = {}
    sets = [(s, split) for s in corpus.SOURCES for split in ("train", "validation")] + [("hard", "train")]
    for source, split in sets:
        examples = corpus.load_hard_benign() if source == "hard" else corpus.load(source, split)
        by_rules, weak, inputs = _rule_evidence(examples)
        if split == "train":
            pieces, owner = [first_window(e.text) for e in examples], list(range(len(examples)))
        else:
            pieces, owner = [], []
            for i, e in enumerate(examples):
                text = model_text(e.text)
                pieces += [text[a:b] for a, b in windows(text)]
                owner += [i] * len(windows(text))
        data[(source, split)] = {
            "x": cache.vectors(pieces),
            "owner": np.array(owner),
            "y": np.array([e.label for e in examples], dtype=np.float64),
            "by_rules": by_rules,
            "weak": weak,
            "inputs": inputs,
        }
    PREPARED.write_bytes(pickle.dumps(data))
    return data


def weights_for(parts: list[tuple[str, np.ndarray]], scheme: str, hard_mult: float) -> np.ndarray:
    """train.source_weights with other part sizes (``scheme``) and the hand-written set scaled."""
    out = []
    for name, y in parts:
        positive = int((y > 0.5).sum())
        negative = len(y) - positive
        size = {"sqrt": np.sqrt(len(y)), "equal": 1.0, "count": float(len(y))}[scheme]
        size *= hard_mult if name == "hard" else 1.0
        if positive and negative:
            out.append(np.where(y > 0.5, 0.5 / positive, 0.5 / negative) * size)
        else:
            out.append(np.full(len(y), size / max(1, len(y))))
    w = np.concatenate(out)
    return w * len(w) / w.sum()


def features(d: dict[str, Any], cfg: dict[str, Any]) -> np.ndarray:
    x = d["x"]
    if cfg.get("blocks"):
        x = x[:, np.concatenate([np.arange(b * BLOCK, (b + 1) * BLOCK) for b in cfg["blocks"]])]
    return np.hstack([x, d["inputs"][d["owner"]]]).astype(np.float32)


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, cfg: dict[str, Any]) -> Any:
    """A function from features to probabilities (the mean over the seeds' models)."""
    if cfg.get("model", "mlp") == "logreg":
        from sklearn.linear_model import LogisticRegression

        models = [LogisticRegression(C=cfg.get("C", 1.0), max_iter=2000).fit(x, y, sample_weight=w)]
    else:
        from sklearn.neural_network import MLPClassifier

        models = [
            MLPClassifier(
                hidden_layer_sizes=tuple(cfg.get("hidden", (256, 64))),
                alpha=cfg.get("alpha", 1e-3),
                max_iter=200,
                early_stopping=True,
                random_state=seed,
            ).fit(x, y, sample_weight=w)
            for seed in cfg.get("seeds", (0, 1, 2))
        ]
    return lambda z: np.mean([m.predict_proba(z)[:, 1] for m in models], axis=0)


def scored(d: dict[str, Any], predict: Any, cfg: dict[str, Any], first_only: bool = False) -> Scored:
    """A prompt's probability is its highest window's (first_only: its first window's, as train.fit)."""
    x, owner = features(d, cfg), d["owner"]
    if first_only:
        keep = np.r_[True, owner[1:] != owner[:-1]]
        x, owner = x[keep], owner[keep]
    best = np.zeros(len(d["y"]))
    np.maximum.at(best, owner, predict(x))
    return Scored(best, d["y"], d["by_rules"], d["weak"])


def train_on(data: dict, sources: list[str], cfg: dict[str, Any]) -> tuple[Any, list[tuple[float, float]]]:
    parts = [(s, data[(s, "train")]) for s in sources] + [("hard", data[("hard", "train")])]
    x = np.vstack([features(d, cfg) for _, d in parts])
    y = np.concatenate([d["y"] for _, d in parts])
    w = weights_for([(n, d["y"]) for n, d in parts], cfg.get("weights", "sqrt"), cfg.get("hard_mult", 1.0))
    predict = fit(x, y, w, cfg)
    validation = {s: scored(data[(s, "validation")], predict, cfg, first_only=True) for s in sources}
    return predict, [thresholds_for(validation, target, WEAK_FLOOR) for target in TARGETS]


def rates(v: Scored, thresholds: tuple[float, float]) -> tuple[float, float]:
    flagged, benign = v.flagged(*thresholds), v.label < 0.5
    recall = flagged[~benign].mean() if (~benign).any() else float("nan")
    fpr = flagged[benign].mean() if benign.any() else float("nan")
    return round(float(recall), 3), round(float(fpr), 3)


def run(name: str, cfg: dict[str, Any], data: dict) -> None:
    started = time.time()
    rows = [{"name": name, "target_fpr": target, "cfg": cfg} for target in TARGETS]
    for held in corpus.SOURCES:
        predict, picks = train_on(data, [s for s in corpus.SOURCES if s != held], cfg)
        v = scored(data[(held, "validation")], predict, cfg)
        for row, pick in zip(rows, picks, strict=True):
            row[f"loo {held}"] = rates(v, pick)
    predict, picks = train_on(data, list(corpus.SOURCES), cfg)
    for row, pick in zip(rows, picks, strict=True):
        row["thresholds"] = [round(float(t), 4) for t in pick]
        for s in corpus.SOURCES:
            row[f"in {s}"] = rates(scored(data[(s, "validation")], predict, cfg), pick)
        row["seconds"] = round(time.time() - started)
        with RESULTS.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def main() -> None:
    variants = json.loads(Path(sys.argv[1]).read_text())
    chosen = set(sys.argv[2:])
    data = prepare()
    for name, cfg in variants.items():
        if not chosen or name in chosen:
            run(name, cfg, data)


if __name__ == "__main__":
    main()
