"""Hash chains as pure functions over plain values (provenance, the audit log).

hash_n = SHA-256( prev_hash ‖ canonical_json(entry_n) ), prev_hash_1 = 64 zeros.
Canonical JSON: sorted keys, no whitespace, UTF-8, so the same entry hashes the
same on every database and Python version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64


def _integral_floats_as_ints(value: Any) -> Any:
    # PostgreSQL's jsonb prints 1e20 as 100000000000000000000 (read back as an int)
    # and 1.0 as 1.0: writing integral floats as integers gives one text for both.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_integral_floats_as_ints(item) for item in value]
    return value


# A number that may be an integral float, as json writes one: "1.0", "-2.0", "1e+16",
# "1.5e+16", between the delimiters a number stands between (a string holding such text only
# costs the slow path). A text with none has no integral float: rewriting would change nothing.
_MAYBE_INTEGRAL_FLOAT = re.compile(r"(?:^|[:\[,])-?\d+(?:\.0|(?:\.\d+)?e[+-]?\d+)(?=$|[,\]}])")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, integral floats as integers, no NaN/Infinity."""
    text = _dump(value)
    # json writes every integral float with ".0" or "e+" (repr): most texts (digests, ids,
    # timestamps) hold neither, and the search tries every position of the text
    if (".0" not in text and "e+" not in text) or _MAYBE_INTEGRAL_FLOAT.search(text) is None:
        return text
    return _dump(_integral_floats_as_ints(value))


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def entry_hash(
    *, prev_hash: str, chain_id: str, seq: int, actor: str, action: str, data: Any, created_at: datetime
) -> str:
    """The hash of one entry of a chain, linked to the entry before it.

    `chain_id` is the chain's own id (a trace's, an audit log's); it is hashed under
    the key "trace", the name the first chains were stored with, so their hashes hold.
    """
    body = canonical_json(
        {
            "trace": str(chain_id),
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


def verify_chain(
    entries: Iterable[Any],
    *,
    chain_id: str,
    head_hash: str,
    entry_count: int,
    visit: Callable[[Any], None] | None = None,
) -> ChainVerification:
    """Recompute a chain from its entries (in seq order: objects with seq, actor, action,
    data, created_at, prev_hash, hash) and check its end against the recorded head; name
    the first entry that does not hold. `visit` sees each entry that does."""
    prev_hash, count = GENESIS_HASH, 0
    for expected_seq, entry in enumerate(entries, start=1):
        count = expected_seq
        if entry.seq != expected_seq:
            return ChainVerification(
                False, expected_seq, f"entry {expected_seq} is missing or renumbered", count
            )
        if entry.prev_hash != prev_hash:
            return ChainVerification(False, entry.seq, "prev_hash does not match the previous entry", count)
        recomputed = entry_hash(
            prev_hash=entry.prev_hash,
            chain_id=chain_id,
            seq=entry.seq,
            actor=entry.actor,
            action=entry.action,
            data=entry.data,
            created_at=entry.created_at,
        )
        if recomputed != entry.hash:
            return ChainVerification(False, entry.seq, "hash does not match the entry's content", count)
        prev_hash = entry.hash
        if visit is not None:
            visit(entry)
    if count != entry_count or prev_hash != head_hash:
        return ChainVerification(False, count + 1, "entries after this point were removed", count)
    return ChainVerification(True, None, None, count)
