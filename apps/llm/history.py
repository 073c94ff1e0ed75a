"""An `llm` run's place in its session's conversation (apps.conversations), shared by the
kind (which records the exchange when the run succeeds) and the worker (which prepends the
history when the payload asks for `use_session_context`)."""

from __future__ import annotations

import math

# Turns are trimmed by tokens; a remote provider's tokenizer is not at hand on the web side,
# so a turn's tokens are estimated at this many characters per token (English text's usual).
CHARS_PER_TOKEN = 4


def conversation_key(provider: str, model: str) -> str:
    """One conversation per session and provider model, apart from local models' ones."""
    return f"llm:{provider}/{model}"[:200]


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))
