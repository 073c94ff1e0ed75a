"""Project configuration. Exposes the Celery app so `celery -A config worker` finds it."""

from __future__ import annotations

from config.celery import app as celery_app

__all__ = ("celery_app",)
