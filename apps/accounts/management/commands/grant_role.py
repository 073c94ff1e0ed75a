from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.roles import ROLES, roles_of
from apps.accounts.services import role_grant, role_revoke


class Command(BaseCommand):
    help = (
        "Give a user a role (submitter, reviewer, admin). Reviewers and admins are made staff, "
        "so they can log into the Django admin and its review queue. --revoke takes it back."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", choices=ROLES)
        parser.add_argument("--revoke", action="store_true", help="Remove the role instead.")

    def handle(self, *args: Any, username: str, role: str, revoke: bool, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        (role_revoke if revoke else role_grant)(user=user, role=role)
        staff = "staff" if user.is_staff else "not staff"
        self.stdout.write(f"{username}: {', '.join(roles_of(user))} ({staff})")
