"""The registered models as plain data, read from settings (INFERENCE_MODELS).

The web side validates `inference` payloads and answers /api/v1/models from this; it never
loads a model (the workers do, through kernels.inference, from the same setting).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings

TASKS = ("embed", "classify", "generate")
# "gpu.<index>" pins a run to one card (the queue of the worker pinned to it). For fullmatch:
# "$" would also match before a final newline, and \d any script's digits.
DEVICE_PATTERN = re.compile(r"cpu|gpu|auto|gpu\.[0-9]{1,3}")


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    task: str
    device: str
    max_batch_size: int | None
    max_length: int | None
    is_default: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "device": self.device,
            "max_batch_size": self.max_batch_size,
            "max_length": self.max_length,
            "default": self.is_default,
        }


def model_registry() -> dict[str, RegisteredModel]:
    models: dict[str, RegisteredModel] = {}
    for name, data in settings.INFERENCE_MODELS.items():
        models[name] = RegisteredModel(
            name=name,
            task=str(data.get("task", "")),
            device=str(data.get("device", "auto")),
            max_batch_size=data.get("max_batch_size"),
            max_length=data.get("max_length"),
            is_default=name == settings.INFERENCE_DEFAULT_EMBED_MODEL,
        )
    return models


def model_get(name: str) -> RegisteredModel | None:
    return model_registry().get(name)


def default_model(task: str) -> str | None:
    """The model a run of `task` gets when it names none (embedding only)."""
    return settings.INFERENCE_DEFAULT_EMBED_MODEL if task == "embed" else None
