"""config/gunicorn.py's own settings, read in a fresh interpreter (the module sets process-wide
state: the metrics directory, the switch interval, the collector's frozen objects)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.workers.conftest import ROOT

SWITCH_INTERVAL_AFTER_WORKER_INIT = (
    "import sys; import config.gunicorn as g; g.post_worker_init(None); print(sys.getswitchinterval())"
)


def _switch_interval(**env: str) -> float:
    printed = subprocess.run(
        [sys.executable, "-c", SWITCH_INTERVAL_AFTER_WORKER_INIT],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(printed)


def test_web_workers_hand_the_gil_on_every_half_millisecond_unless_told_otherwise():
    assert _switch_interval() == 0.0005
    assert _switch_interval(WEB_SWITCH_INTERVAL_SECONDS="0.002") == 0.002


FROZEN_AFTER_WORKER_INIT = (
    "import gc, sys; import config.asgi; import config.gunicorn as g; g.post_worker_init(None); "
    "print(gc.get_freeze_count(), 'apps.runs.api.views' in sys.modules)"
)


def test_a_web_worker_freezes_what_the_app_loaded_views_included():
    frozen, views_loaded = subprocess.run(
        [sys.executable, "-c", FROZEN_AFTER_WORKER_INIT],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert int(frozen) > 50_000  # Django, DRF and the project's modules
    assert views_loaded == "True"
