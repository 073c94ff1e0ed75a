from __future__ import annotations

from django.contrib import admin

from apps.conversations.models import Conversation, Turn


class TurnInline(admin.TabularInline):
    model = Turn
    extra = 0
    readonly_fields = ["role", "content", "tokens", "run_id", "created_at"]
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["key", "session", "updated_at"]
    search_fields = ["key", "session__name"]
    readonly_fields = ["session", "key", "created_at", "updated_at"]
    inlines = [TurnInline]
