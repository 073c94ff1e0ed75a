"""Model serving in a worker process: the registry from settings, the model cache and the
batcher (one of each per process), and a run's way through them.

Models and batches are shared by every run this process executes; what belongs to a run
(its inputs, its session's conversation) travels with the call and is gone after it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Hashable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from django.conf import settings

from apps.conversations.selectors import conversation_history
from kernels.inference import (
    Generation,
    LoadedModel,
    ModelCache,
    ModelError,
    ModelSpec,
    pick_device,
    registry_from_mapping,
    servable,
)
from workers.batching import BatchInfo, MicroBatcher
from workers.context import DeviceUnavailable, RunContext

logger = logging.getLogger(__name__)

# How often a run waiting on its batch checks that it was not cancelled and still holds its lease.
# The flag it reads changes at most once a RUN_HEARTBEAT_SECONDS (5 s) beat, so checking faster
# gains little, and each check wakes a waiting run's thread: 64 of them waking four times a
# second took GIL turns from the batch's forward pass (docs/benchmarks.md).
WAIT_CHECK_SECONDS = 1.0


@functools.cache
def registry() -> dict[str, ModelSpec]:
    return registry_from_mapping(settings.INFERENCE_MODELS)


def servable_models() -> list[str]:
    """Registered models whose files this host has (what the heartbeat advertises)."""
    try:
        specs = registry()
    except ModelError:
        logger.exception("INFERENCE_MODELS is invalid")
        return []
    return sorted(name for name, spec in specs.items() if servable(spec))


@functools.cache
def model_cache() -> ModelCache:
    return ModelCache(capacity=settings.INFERENCE_MODEL_CACHE_SIZE)


def _forward(key: Hashable, items: list[Any]) -> list[Any]:
    """One batched call for every waiting run of a (model, device, task)."""
    name, device, task = key  # type: ignore[misc]
    model = model_cache().get(registry()[name], device)
    if task == "embed":
        return list(model.embed(items))
    if task == "classify":
        return model.classify(items)
    prompts, limits = zip(*items, strict=True)
    return model.generate(list(prompts), list(limits))


@functools.cache
def batcher() -> MicroBatcher:
    return MicroBatcher(
        _forward,
        max_items=settings.INFERENCE_BATCH_MAX_ITEMS,
        max_wait_seconds=settings.INFERENCE_BATCH_MAX_WAIT_MS / 1000.0,
    )


def cuda_available() -> bool:
    from workers.bootstrap import worker_capabilities

    return bool(worker_capabilities()["gpus"])


def _device_for(spec: ModelSpec, requested: str) -> str:
    wanted = "gpu" if requested.startswith("gpu") else requested
    try:
        return pick_device(spec, wanted, cuda_available=cuda_available())
    except ModelError as exc:
        raise DeviceUnavailable(str(exc)) from exc


def _wait(future: Any, ctx: RunContext) -> tuple[list[Any], BatchInfo]:
    while True:
        try:
            return future.result(timeout=WAIT_CHECK_SECONDS)
        except FutureTimeout:
            try:
                ctx.check()
            except BaseException:
                future.cancel()  # still waiting: leave the batch; already running: result dropped
                raise


def load(payload: dict[str, Any]) -> tuple[ModelSpec, LoadedModel]:
    name = payload["model"]
    spec = registry().get(name)
    if spec is None:
        raise ModelError(f"model {name!r} is not registered on this worker")
    device = _device_for(spec, payload.get("device", "auto"))
    return spec, model_cache().get(spec, device)


def run_inference(payload: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Execute one `inference` run: its inputs join the batch of its model, task and device."""
    spec, model = load(payload)
    task = payload["task"]
    ctx.check()
    key = (spec.name, model.device, task)
    if task in ("embed", "classify"):
        inputs = payload["inputs"]
        model.check_lengths(inputs)
        results, batch = _wait(batcher().submit(key, inputs), ctx)
        ctx.progress(1.0)
        if task == "embed":
            return {
                "embeddings": [vector.tolist() for vector in results],
                "model": spec.name,
                "device": model.device,
                "dim": model.dimension,
                "batch": batch.as_json(),
            }
        return {
            "labels": [label for label, _ in results],
            "scores": [score for _, score in results],
            "model": spec.name,
            "device": model.device,
            "batch": batch.as_json(),
        }
    max_new_tokens = int(payload["max_new_tokens"])
    # the session's own turns, read by its id for this run only: nothing is kept here after it
    history = conversation_history(
        session_id=ctx.session_id, key=spec.name, max_tokens=settings.CONVERSATION_MAX_TOKENS
    )
    prompt = model.build_prompt([(t.role, t.content) for t in history], payload["prompt"], max_new_tokens)
    results, batch = _wait(batcher().submit(key, [(prompt.text, max_new_tokens)]), ctx)
    generation: Generation = results[0]
    ctx.progress(1.0)
    return {
        "text": generation.text,
        "model": spec.name,
        "device": model.device,
        "tokens": generation.tokens,
        "prompt_tokens": prompt.prompt_tokens,
        "context_turns": prompt.turns_used,
        "batch": batch.as_json(),
    }
