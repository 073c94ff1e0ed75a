"""Whether each configured provider answers, for /ready's details, without spending tokens:
one unauthenticated GET of its models list (`<base_url>/models` for the OpenAI API,
`<base_url>/v1/models` for Anthropic's) with a short timeout. Any HTTP answer, a 401
included, means the server is there (the key lives on the workers and is never sent from
here); a refused connection or a timeout means it is not. Cached for LLM_READY_CACHE_SECONDS
so a busy probe does not hammer a provider; the probes of several providers run at once.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache

from apps.llm.providers import Provider, ProviderConfigError, providers_all

CACHE_KEY = "llm:providers:reachability"


def probe_url(provider: Provider) -> str:
    return f"{provider.base_url}/models" if provider.api == "openai" else f"{provider.base_url}/v1/models"


def _probe(provider: Provider) -> dict[str, Any]:
    started = time.monotonic()
    report: dict[str, Any] = {"api": provider.api, "base_url": provider.base_url}
    request = urllib.request.Request(
        probe_url(provider), method="GET", headers={"Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.LLM_READY_TIMEOUT_SECONDS) as response:  # noqa: S310
            report.update(status="reachable", http_status=response.status)
    except urllib.error.HTTPError as exc:
        report.update(status="reachable", http_status=exc.code)
    except Exception as exc:  # refused, timed out, DNS: the provider cannot be reached
        reason = getattr(exc, "reason", exc)
        report.update(status="unreachable", message=f"{type(exc).__name__}: {reason}"[:300])
    report["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    report["checked_at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return report


def providers_reachability() -> dict[str, Any]:
    """{"status": "ok" | "degraded" | "none" | "misconfigured", "providers": {name: report}}."""
    try:
        providers = providers_all()
    except ProviderConfigError as exc:
        return {"status": "misconfigured", "message": str(exc), "providers": {}}
    if not providers:
        return {"status": "none", "message": "no LLM provider is configured (LLM_PROVIDERS)", "providers": {}}
    fingerprint = sorted((p.name, p.api, p.base_url) for p in providers.values())
    cached = cache.get(CACHE_KEY)
    if cached is not None and cached["fingerprint"] == fingerprint:
        return cached["details"]
    with ThreadPoolExecutor(max_workers=min(8, len(providers))) as pool:
        reports = dict(zip(providers, pool.map(_probe, providers.values()), strict=True))
    down = [name for name, report in reports.items() if report["status"] != "reachable"]
    details = {
        "status": "degraded" if down else "ok",
        "message": f"unreachable: {', '.join(down)}" if down else "every provider answers",
        "providers": reports,
    }
    cache.set(CACHE_KEY, {"fingerprint": fingerprint, "details": details}, settings.LLM_READY_CACHE_SECONDS)
    return details
