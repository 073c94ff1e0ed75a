"""API key format: `lg_<prefix>_<secret>`; only the SHA-256 of the whole key is stored."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX_TAG = "lg"
PREFIX_LENGTH = 8
SECRET_BYTES = 32  # 256 bits of entropy: a plain SHA-256 is enough, no slow KDF needed


def generate_key() -> tuple[str, str]:
    """Return (prefix, full key)."""
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    return prefix, f"{KEY_PREFIX_TAG}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
