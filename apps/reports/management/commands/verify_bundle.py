"""`python manage.py verify_bundle FILE`: check an export bundle offline.

Every file against the manifest's SHA-256 and size, every provenance chain against its hashes;
each changed, missing or added file and each broken chain is named. Exits non-zero when any is
found. The same check as `limitgraph verify FILE` (limitgraph_cli.bundle).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from limitgraph_cli.bundle import verify_bundle


class Command(BaseCommand):
    help = "Check an export bundle (zip) against its manifest and its provenance chains, offline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The bundle (.zip) to check.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = verify_bundle(options["file"])
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            raise CommandError(f"cannot read {options['file']}: {exc.strerror}") from exc
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json(), indent=2))
        else:
            for line in report.lines():
                (self.stdout if report.valid else self.stderr).write(line)
        if not report.valid:
            raise CommandError(f"{options['file']} does not verify")
