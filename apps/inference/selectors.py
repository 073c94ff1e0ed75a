from __future__ import annotations

from typing import Any

from apps.core.selectors import worker_live_list
from apps.inference.registry import model_registry


def model_list_with_workers() -> list[dict[str, Any]]:
    """Every registered model and the live workers that can serve it (from their
    heartbeats: a worker lists the models whose files it has)."""
    workers = worker_live_list()
    out = []
    for model in sorted(model_registry().values(), key=lambda m: (m.task, m.name)):
        serving = [
            {
                "hostname": worker.hostname,
                "queues": worker.queues,
                "gpus": (worker.capabilities or {}).get("gpus", 0),
            }
            for worker in workers
            if model.name in (worker.capabilities or {}).get("models", ())
        ]
        out.append({**model.as_json(), "workers": serving})
    return out
