from __future__ import annotations

# Each test's plots are artifacts in a directory of its own.
from tests.apps.artifacts.conftest import artifact_root  # noqa: F401
