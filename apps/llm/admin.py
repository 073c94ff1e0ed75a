from __future__ import annotations

from django.contrib import admin

from apps.llm.models import LlmUsage, ProviderSlot


@admin.register(LlmUsage)
class LlmUsageAdmin(admin.ModelAdmin):
    list_display = ["session", "provider", "model", "input_tokens", "output_tokens", "runs", "updated_at"]
    list_filter = ["provider"]
    readonly_fields = list_display


@admin.register(ProviderSlot)
class ProviderSlotAdmin(admin.ModelAdmin):
    list_display = ["provider", "slot", "run_id", "user", "expires_at"]
    list_filter = ["provider"]
