"""Limits the runs API enforces, declared in the OpenAPI schema (a drf-spectacular
postprocessing hook, after apps.core.schema.document_errors).

Here rather than in apps/runs/api so that the declaration reads the same constants the
validation uses: the batch size from MAX_BATCH_RUNS, the Idempotency-Key rule from the
view's own pattern. tests/test_schema_truth.py checks both against the live validation.
The submit endpoints' 429 also names backpressure (apps/runs/backpressure.py).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from apps.runs.api.views import IDEMPOTENCY_KEY_PATTERN

SUBMIT_PATHS = ("/api/v1/runs", "/api/v1/runs/batch")
BACKPRESSURE_429 = (
    "Or backpressure (`queue_overloaded`): the run's queue is backed up (too many runs waiting, "
    "or its oldest waiting run has waited too long: BACKPRESSURE_* settings), so nothing was "
    "stored (a batch is refused whole); `Retry-After` is estimated from the queue's recent drain rate."
)
BATCH_COMPONENT = "RunBatchSubmitInputRequest"
RUN_COMPONENT = "RunSubmitInputRequest"


def declare_run_limits(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.get("components", {}).get("schemas", {})
    batch = schemas.get(BATCH_COMPONENT, {}).get("properties", {}).get("runs")
    if batch is not None:
        batch.update(
            {
                "items": {"$ref": f"#/components/schemas/{RUN_COMPONENT}"},
                "minItems": 1,
                "maxItems": settings.MAX_BATCH_RUNS,
                "description": f"1 to {settings.MAX_BATCH_RUNS} runs (MAX_BATCH_RUNS), stored all or none.",
            }
        )
    for path in SUBMIT_PATHS:
        refused = result.get("paths", {}).get(path, {}).get("post", {}).get("responses", {}).get("429")
        if refused is not None:
            refused["description"] = f"{refused['description']} {BACKPRESSURE_429}"
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "header" and parameter.get("name") == "Idempotency-Key":
                    parameter["schema"] = {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 255,
                        "pattern": IDEMPOTENCY_KEY_PATTERN.pattern,
                    }
                    parameter["description"] = (
                        f"{parameter.get('description', '')} 1 to 255 visible ASCII characters, no spaces."
                    ).strip()
    return result
