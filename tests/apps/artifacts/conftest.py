from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def artifact_root(settings, tmp_path: Path) -> Path:
    """Each test stores its artifacts in a directory of its own, through the settings alone."""
    root = tmp_path / "artifacts"
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": root},
        },
    }
    return root


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []
