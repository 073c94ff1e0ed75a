from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

# Extra attributes callers pass with `extra=` that belong in the JSON line.
CONTEXT_FIELDS = ("request_id", "run_id", "trace_id", "session_id", "task_id", "queue", "kind")


# Set by RequestIdMiddleware (web) and the run task (workers); every log line carries them.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
run_id_var: ContextVar[str | None] = ContextVar("run_id", default=None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, carrying run/trace ids when the caller gives them."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = {"request_id": request_id_var.get(), "run_id": run_id_var.get()}
        for field in CONTEXT_FIELDS:
            value = getattr(record, field, None) or context.get(field)
            if value is not None:
                entry[field] = str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
