from __future__ import annotations

from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "apps.llm"
    label = "llm"
    verbose_name = "Remote LLMs"

    def ready(self) -> None:
        from apps.core.health import register_ready_detail
        from apps.llm.reachability import providers_reachability
        from apps.llm.tools import load_tool_modules

        load_tool_modules()
        register_ready_detail("llm_providers", providers_reachability)
