"""Keeps the storage in step with the rows: bytes go when their Artifact row goes.

A signal rather than a service call because rows also go by cascade (a session or a user
deleted) and from the admin, where no artifact service runs.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete
from django.dispatch import receiver

from apps.artifacts.models import Artifact
from apps.artifacts.services import schedule_storage_discard


@receiver(post_delete, sender=Artifact, dispatch_uid="artifacts.discard_stored_bytes")
def discard_stored_bytes(sender: type[Artifact], instance: Artifact, **kwargs: Any) -> None:
    schedule_storage_discard(storage_key=instance.storage_key)
