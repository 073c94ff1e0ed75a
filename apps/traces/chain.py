"""The hash chain, as pure functions over plain values.

hash_n = SHA-256( prev_hash ‖ canonical_json(entry_n) ), prev_hash_1 = 64 zeros.
canonical JSON: sorted keys, no whitespace, UTF-8, so the same entry hashes the
same on every database and Python version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def entry_hash(
    *, prev_hash: str, trace_id: str, seq: int, actor: str, action: str, data: Any, created_at: datetime
) -> str:
    body = canonical_json(
        {
            "trace": str(trace_id),
            "seq": seq,
            "actor": actor,
            "action": action,
            "data": data,
            "created_at": created_at.astimezone(UTC).isoformat(),
        }
    )
    return sha256_hex(prev_hash + body)


@dataclass(frozen=True)
class ChainVerification:
    valid: bool
    broken_at: int | None
    reason: str | None
    entries: int
