"""`inference`: a registered model's embed, classify or generate task on worker pools.

    {"task": "embed", "inputs": [...], "model": <optional>}      -> embeddings, model, device, dim
    {"task": "classify", "model", "inputs": [...]}                -> labels, scores, model, device
    {"task": "generate", "model", "prompt", "max_new_tokens"}     -> text, model, device, tokens

`device` ("cpu", "gpu", "gpu.<index>", "auto") picks the queue at submission (apps.runs.devices).
A `generate` run continues its session's conversation with the model; the exchange is recorded
when the run succeeds (in run_complete's transaction and attempt fence), never by the worker.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from apps.conversations.services import conversation_record_exchange
from apps.core.queues import Queue
from apps.inference.registry import DEVICE_PATTERN, TASKS, default_model, model_get
from apps.runs.devices import queue_for_model_device
from apps.runs.kinds import RunKind, register
from apps.runs.kinds._strict import StrictChoiceField, StrictIntegerField, StrictPayloadSerializer

FIELDS_BY_TASK = {
    "embed": {"task", "inputs", "model", "device"},
    "classify": {"task", "inputs", "model", "device"},
    "generate": {"task", "prompt", "model", "max_new_tokens", "device"},
}
DEFAULT_MAX_NEW_TOKENS = 64


class StrictTextField(serializers.CharField):
    """A JSON string (not a number), kept exactly as sent (no whitespace trimming)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"Must be a string, not {type(data).__name__}.")
        return super().to_internal_value(data)


class InferencePayloadSerializer(StrictPayloadSerializer):
    task = StrictChoiceField(choices=TASKS)
    model = StrictTextField(required=False, max_length=200)
    inputs = serializers.ListField(required=False, allow_empty=False)
    prompt = StrictTextField(required=False, allow_blank=False)
    max_new_tokens = StrictIntegerField(required=False, min_value=1)
    device = StrictTextField(required=False, default="auto")

    def validate_inputs(self, value: list[Any]) -> list[str]:
        limit, chars = settings.INFERENCE_MAX_INPUTS, settings.INFERENCE_MAX_INPUT_CHARS
        if len(value) > limit:
            raise serializers.ValidationError(f"At most {limit} inputs per run (INFERENCE_MAX_INPUTS).")
        for index, text in enumerate(value):
            if not isinstance(text, str):
                raise serializers.ValidationError(
                    f"Item {index} must be a string, not {type(text).__name__}."
                )
            if len(text) > chars:
                raise serializers.ValidationError(f"Item {index} is over {chars} characters.")
        return value

    def validate_prompt(self, value: str) -> str:
        if len(value) > settings.INFERENCE_MAX_INPUT_CHARS:
            raise serializers.ValidationError(f"At most {settings.INFERENCE_MAX_INPUT_CHARS} characters.")
        return value

    def validate_max_new_tokens(self, value: int) -> int:
        if value > settings.INFERENCE_MAX_NEW_TOKENS:
            raise serializers.ValidationError(
                f"At most {settings.INFERENCE_MAX_NEW_TOKENS} (INFERENCE_MAX_NEW_TOKENS)."
            )
        return value

    def validate_device(self, value: str) -> str:
        if not DEVICE_PATTERN.fullmatch(value):
            raise serializers.ValidationError('Must be "cpu", "gpu", "gpu.<index>" or "auto".')
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        task = attrs["task"]
        errors: dict[str, list[str]] = {}
        for name in sorted(set(attrs) - FIELDS_BY_TASK[task]):
            errors[name] = [
                f"Not a field of the {task} task; it takes: {', '.join(sorted(FIELDS_BY_TASK[task]))}."
            ]
        if task in ("embed", "classify") and "inputs" not in attrs:
            errors["inputs"] = ["Required for the embed and classify tasks: a list of strings."]
        if task == "generate":
            if "prompt" not in attrs:
                errors["prompt"] = ["Required for the generate task."]
            attrs.setdefault("max_new_tokens", min(DEFAULT_MAX_NEW_TOKENS, settings.INFERENCE_MAX_NEW_TOKENS))
        name = attrs.get("model") or default_model(task)
        if name is None:
            errors["model"] = [f"Required for the {task} task; GET /api/v1/models lists them."]
        else:
            model = model_get(name)
            if model is None:
                errors["model"] = [f"Unknown model {name!r}; GET /api/v1/models lists them."]
            elif model.task != task:
                errors["model"] = [f"Model {name!r} serves the {model.task} task, not {task}."]
            attrs["model"] = name
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def inference_queue(payload: dict[str, Any]) -> str:
    return queue_for_model_device(device=payload["device"], model=payload["model"], cpu_queue=Queue.INFERENCE)


def record_generation(run: Any, result: Any) -> None:
    """A generate run's prompt and reply become the next turns of its session's conversation."""
    if run.payload.get("task") != "generate" or not isinstance(result, dict):
        return
    conversation_record_exchange(
        session=run.session,
        key=run.payload["model"],
        prompt=run.payload["prompt"],
        prompt_tokens=int(result.get("prompt_tokens", 0)),
        reply=str(result.get("text", "")),
        reply_tokens=int(result.get("tokens", 0)),
        max_tokens=settings.CONVERSATION_MAX_TOKENS,
        run_id=run.pk,
    )


register(
    RunKind(
        name="inference",
        payload_serializer=InferencePayloadSerializer,
        queue=Queue.INFERENCE,
        select_queue=inference_queue,
        time_limit_seconds=600,
        description="Model inference: embed, classify or generate with a registered local model.",
        on_success=record_generation,
        # a model that could not load is not transient; a lost database connection is
        retry_on=("OperationalError", "ConnectionError"),
    )
)
