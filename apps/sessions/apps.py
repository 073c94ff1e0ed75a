from __future__ import annotations

from django.apps import AppConfig


class ComputeSessionsConfig(AppConfig):
    name = "apps.sessions"
    # django.contrib.sessions already owns the label "sessions".
    label = "compute_sessions"
    verbose_name = "Sessions"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from apps.policies.models import Policy, PolicyVersion
        from apps.sessions import receivers  # noqa: F401  (a session's workspace goes with it)
        from apps.sessions.models import Session
        from apps.sessions.selectors import session_cache

        # Whatever a submission reads of its session changes with these rows (selectors.session_cache).
        for model in (Session, Policy, PolicyVersion):
            invalidate, name = session_cache.invalidate, model.__name__
            post_save.connect(invalidate, sender=model, dispatch_uid=f"sessioncache-save-{name}")
            post_delete.connect(invalidate, sender=model, dispatch_uid=f"sessioncache-del-{name}")
