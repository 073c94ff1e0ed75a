"""`python`: untrusted Python code, run sandboxed on the `sandbox` queue (workers/sandbox).

    {"code": "...", "timeout_s": 10, "memory_mb": 256, "env": {}, "interpreter": "python3",
     "files": ["<artifact id>", ...]}

The program is `payload["code"]` (CODE_FIELD): what governance's input scan reads. It
runs with the session's workspace as its working directory; the result is
{"stdout", "stderr", "exit_code", "duration_s", "peak_memory_mb", "limit", "files"}.
Limits and the environment allow-list come from the SANDBOX_* settings, read at
validation time.
"""

from __future__ import annotations

import fnmatch
import re
import uuid
from typing import Any

from django.conf import settings
from rest_framework import serializers

from apps.core.queues import Queue
from apps.core.selectors import worker_live_list
from apps.runs.devices import NoCapableWorker
from apps.runs.kinds import DEFAULT_TIME_LIMIT_SECONDS, RunKind, register
from apps.runs.kinds._strict import StrictFloatField, StrictIntegerField, StrictPayloadSerializer

CODE_FIELD = "code"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_ENV_VARS = 64
MAX_ENV_VALUE_CHARS = 4096
MIN_MEMORY_MB = 32
MIN_TIMEOUT_SECONDS = 0.1


class StrictStringField(serializers.CharField):
    """A JSON string (not a number coerced to one)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"Must be a string, not {type(data).__name__}.")
        if "\x00" in data:
            raise serializers.ValidationError("Must not contain NUL characters.")
        return super().to_internal_value(data)


def _env_name_allowed(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in settings.SANDBOX_ENV_ALLOWLIST)


class PythonPayloadSerializer(StrictPayloadSerializer):
    code = StrictStringField(allow_blank=True, trim_whitespace=False)
    timeout_s = StrictFloatField(required=False, min_value=MIN_TIMEOUT_SECONDS)
    memory_mb = StrictIntegerField(required=False, min_value=MIN_MEMORY_MB)
    env = serializers.JSONField(required=False)
    interpreter = serializers.JSONField(required=False, allow_null=True)
    files = serializers.JSONField(required=False, allow_null=True)

    def validate_timeout_s(self, value: float) -> float:
        if value > settings.SANDBOX_MAX_TIMEOUT_SECONDS:
            raise serializers.ValidationError(
                f"Must be at most {settings.SANDBOX_MAX_TIMEOUT_SECONDS:g} (SANDBOX_MAX_TIMEOUT_SECONDS)."
            )
        return value

    def validate_memory_mb(self, value: int) -> int:
        if value > settings.SANDBOX_MAX_MEMORY_MB:
            raise serializers.ValidationError(
                f"Must be at most {settings.SANDBOX_MAX_MEMORY_MB} (SANDBOX_MAX_MEMORY_MB)."
            )
        return value

    def validate_env(self, value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be an object of names to string values.")
        if len(value) > MAX_ENV_VARS:
            raise serializers.ValidationError(f"At most {MAX_ENV_VARS} variables.")
        problems = []
        for name, text in value.items():
            if not ENV_NAME.fullmatch(name):
                problems.append(f"{name!r} is not a variable name (letters, digits, _).")
            elif not _env_name_allowed(name):
                allowed = ", ".join(settings.SANDBOX_ENV_ALLOWLIST) or "none"
                problems.append(f"{name!r} is not allowed (SANDBOX_ENV_ALLOWLIST: {allowed}).")
            elif not isinstance(text, str) or "\x00" in text or len(text) > MAX_ENV_VALUE_CHARS:
                problems.append(
                    f"{name!r}: the value must be a string of at most {MAX_ENV_VALUE_CHARS} characters."
                )
        if problems:
            raise serializers.ValidationError(problems)
        return value

    def validate_interpreter(self, value: Any) -> str | None:
        if value is None:
            return None
        names = sorted(settings.SANDBOX_INTERPRETERS)
        if not isinstance(value, str) or value not in settings.SANDBOX_INTERPRETERS:
            raise serializers.ValidationError(f"Must be one of: {', '.join(names)} (SANDBOX_INTERPRETERS).")
        return value

    def validate_files(self, value: Any) -> list[str]:
        if value is None:
            return []
        limit = settings.SANDBOX_MAX_INPUT_FILES
        if not isinstance(value, list) or len(value) > limit:
            raise serializers.ValidationError(f"Must be a list of at most {limit} artifact ids.")
        ids = []
        for item in value:
            try:
                ids.append(str(uuid.UUID(item)) if isinstance(item, str) else None)
            except ValueError:
                ids.append(None)
        if None in ids:
            raise serializers.ValidationError("Each entry must be an artifact id (a UUID string).")
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError("An artifact is listed twice.")
        return ids

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if len(attrs["code"].encode("utf-8", errors="surrogatepass")) > settings.MAX_PAYLOAD_BYTES:
            raise serializers.ValidationError({"code": ["Longer than MAX_PAYLOAD_BYTES."]})
        # Defaults stored in the run, so that what ran is what the run says.
        attrs.setdefault("timeout_s", settings.SANDBOX_DEFAULT_TIMEOUT_SECONDS)
        attrs.setdefault("memory_mb", min(settings.SANDBOX_DEFAULT_MEMORY_MB, settings.SANDBOX_MAX_MEMORY_MB))
        attrs["env"] = attrs.get("env") or {}
        attrs["interpreter"] = attrs.get("interpreter") or None
        attrs["files"] = attrs.get("files") or []
        return attrs


def sandbox_queue(payload: dict[str, Any]) -> str:
    """`sandbox`, unless every live sandbox worker reports that it cannot sandbox.

    No live sandbox worker at all is not refused: the run waits on its queue as any run does.
    """
    workers = worker_live_list(queue=Queue.SANDBOX.value)
    reports = {worker.hostname: (worker.capabilities or {}).get("sandbox") or {} for worker in workers}
    if reports and not any(report.get("available") for report in reports.values()):
        reasons = "; ".join(
            f"{hostname}: {report.get('reason') or 'no sandbox reported'}"
            for hostname, report in reports.items()
        )
        raise NoCapableWorker(f"No live worker can run sandboxed python ({reasons}).")
    return Queue.SANDBOX.value


register(
    RunKind(
        name="python",
        payload_serializer=PythonPayloadSerializer,
        queue=Queue.SANDBOX,
        select_queue=sandbox_queue,
        # Covers the session's earlier runs it may wait for, not only its own timeout_s.
        time_limit_seconds=DEFAULT_TIME_LIMIT_SECONDS,
        description="Runs `code` in the Python sandbox, in the session's workspace, under limits.",
    )
)
