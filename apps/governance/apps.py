from __future__ import annotations

from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "apps.governance"
    label = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        # Governance fills the run pipeline's hooks; the runs app knows nothing of it.
        from apps.governance.checks import register_checks

        register_checks()
