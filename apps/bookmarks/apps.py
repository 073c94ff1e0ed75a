from __future__ import annotations

from django.apps import AppConfig


class BookmarksConfig(AppConfig):
    name = "apps.bookmarks"
    label = "bookmarks"
    verbose_name = "Saved runs"
