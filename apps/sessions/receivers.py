"""A session's workspace goes with the session, however the row goes (the API, the
admin, a user's deletion cascading)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from apps.sessions.models import Session
from apps.sessions.workspace import workspace_delete


@receiver(post_delete, sender=Session, dispatch_uid="sessions.delete_workspace")
def delete_workspace(sender: type[Session], instance: Session, **kwargs: Any) -> None:
    session_id = instance.pk
    # After commit: a rolled-back deletion keeps its files.
    transaction.on_commit(lambda: workspace_delete(session_id=session_id))
