from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Extra attributes callers pass with `extra=` that belong in the JSON line.
CONTEXT_FIELDS = ("request_id", "run_id", "trace_id", "session_id", "task_id", "queue", "kind")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, carrying run/trace ids when the caller gives them."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
