"""What each run kind does on a worker: one module per kind, `workers/executors/<kind>.py`,
defining `execute(payload, ctx)`. The kind's web side (payload validation, limits, queue
policy) is `apps/runs/kinds/<kind>.py`; the module names match, so a new kind is two
files and no list.

Executors import heavy code (kernels, torch) inside `execute` so a worker pays for
what it runs only.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable
from typing import Any

from workers.context import RunContext

Executor = Callable[[dict[str, Any], RunContext], Any]

_EXECUTORS: dict[str, Executor] = {}
_LOADING = threading.Lock()


def load_executors() -> dict[str, Executor]:
    # A threads pool's first runs arrive together: each must wait for the whole table, not
    # read one that another thread is still filling.
    global _EXECUTORS
    if not _EXECUTORS:
        with _LOADING:
            if not _EXECUTORS:
                loaded = {
                    module.name: importlib.import_module(f"{__name__}.{module.name}").execute
                    for module in pkgutil.iter_modules(__path__)
                    if not module.name.startswith("_")
                }
                _EXECUTORS = loaded
    return _EXECUTORS


def get_executor(kind: str) -> Executor | None:
    return load_executors().get(kind)
