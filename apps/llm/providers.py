"""Remote LLM providers, from settings: LLM_PROVIDERS (JSON in the environment, or a dict a
settings module extends the same way):

    {"<name>": {"api": "openai" | "anthropic", "base_url": "...", "api_key_env": "<VARIABLE>",
                "models": ["..."],
                # optional:
                "timeout_seconds": 60, "concurrency": 4, "user_concurrency": 2, "stream": true}}

`openai` is every server that speaks OpenAI's chat-completions API (OpenAI, vLLM, Ollama,
LiteLLM and other gateways; base_url ends in /v1), `anthropic` the Messages API (base_url
without /v1). The API key is read on the worker from the variable `api_key_env` names, at
call time: it is never stored, logged, returned or written to a trace. A provider whose
server needs no key (a local Ollama) may leave `api_key_env` empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from apps.core.exceptions import ValidationFailed

APIS = ("openai", "anthropic")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
KEYS = {
    "api",
    "base_url",
    "api_key_env",
    "models",
    "timeout_seconds",
    "concurrency",
    "user_concurrency",
    "stream",
}


class ProviderConfigError(ValueError):
    """LLM_PROVIDERS is malformed; the message names the provider and the key."""


@dataclass(frozen=True)
class Provider:
    name: str
    api: str
    base_url: str
    api_key_env: str
    models: tuple[str, ...]
    timeout_seconds: float
    # Model calls in flight through this provider at once, platform-wide, and per user
    # (below the first, so one user can never hold every slot).
    concurrency: int
    user_concurrency: int
    stream: bool

    def as_public(self) -> dict[str, Any]:
        """What a client may see: no key, no variable name."""
        return {"name": self.name, "api": self.api, "base_url": self.base_url, "models": list(self.models)}


def _positive(value: Any, where: str, *, integer: bool) -> Any:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        raise ProviderConfigError(f"{where} must be a positive {'integer' if integer else 'number'}.")
    return value


def _parse(name: str, spec: Any) -> Provider:
    where = f"LLM_PROVIDERS[{name!r}]"
    if not isinstance(spec, dict):
        raise ProviderConfigError(f"{where} must be an object.")
    unknown = sorted(set(spec) - KEYS)
    if unknown:
        raise ProviderConfigError(f"{where} has unknown key(s) {', '.join(unknown)}.")
    api = spec.get("api")
    if api not in APIS:
        raise ProviderConfigError(f"{where}.api must be one of {', '.join(APIS)}.")
    base_url = spec.get("base_url")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ProviderConfigError(f"{where}.base_url must be an http(s) URL.")
    key_env = spec.get("api_key_env", "")
    if not isinstance(key_env, str) or (key_env and not ENV_NAME.fullmatch(key_env)):
        raise ProviderConfigError(f"{where}.api_key_env must name an environment variable.")
    models = spec.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models):
        raise ProviderConfigError(f"{where}.models must be a non-empty list of model names (the allow-list).")
    concurrency = _positive(
        spec.get("concurrency", settings.LLM_PROVIDER_CONCURRENCY), f"{where}.concurrency", integer=True
    )
    user_concurrency = _positive(
        spec.get("user_concurrency", max(1, min(settings.LLM_PROVIDER_USER_CONCURRENCY, concurrency))),
        f"{where}.user_concurrency",
        integer=True,
    )
    stream = spec.get("stream", True)
    if not isinstance(stream, bool):
        raise ProviderConfigError(f"{where}.stream must be true or false.")
    return Provider(
        name=name,
        api=api,
        base_url=base_url.rstrip("/"),
        api_key_env=key_env,
        models=tuple(models),
        timeout_seconds=float(
            _positive(
                spec.get("timeout_seconds", settings.LLM_TIMEOUT_SECONDS),
                f"{where}.timeout_seconds",
                integer=False,
            )
        ),
        concurrency=concurrency,
        user_concurrency=min(user_concurrency, concurrency),
        stream=stream,
    )


def providers_all() -> dict[str, Provider]:
    """Every configured provider by name; ProviderConfigError names the first fault."""
    configured = settings.LLM_PROVIDERS
    if not isinstance(configured, dict):
        raise ProviderConfigError("LLM_PROVIDERS must be a JSON object of provider names to settings.")
    return {name: _parse(name, spec) for name, spec in configured.items()}


def provider_get(name: str) -> Provider | None:
    try:
        return providers_all().get(name)
    except ProviderConfigError as exc:
        raise ValidationFailed(f"The LLM provider settings are invalid: {exc}") from None
