from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts and API keys"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save
        from rest_framework.authtoken.models import Token

        from apps.accounts import authcache
        from apps.accounts.models import ApiKey

        # Whatever can revoke a credential invalidates the cached ones (apps.accounts.authcache).
        for model in (get_user_model(), Token, ApiKey):
            post_save.connect(
                _invalidate_on_save, sender=model, dispatch_uid=f"authcache-save-{model.__name__}"
            )
            post_delete.connect(
                authcache.invalidate, sender=model, dispatch_uid=f"authcache-del-{model.__name__}"
            )


def _invalidate_on_save(sender: type, update_fields: frozenset[str] | None = None, **kwargs: object) -> None:
    from apps.accounts import authcache

    # A login's timestamp and a key's last use change nothing about who may authenticate.
    if update_fields is not None and set(update_fields) <= {"last_login", "last_used_at"}:
        return
    authcache.invalidate()
