from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from apps.accounts.models import ApiKey


def api_key_list_for_user(*, user: AbstractBaseUser) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user)


def api_key_get_for_user(*, user: AbstractBaseUser, key_id: int) -> ApiKey | None:
    return api_key_list_for_user(user=user).filter(pk=key_id).first()
