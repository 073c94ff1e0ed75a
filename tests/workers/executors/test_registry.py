"""The executor table as a threads pool's first runs see it: whole, from every thread."""

from __future__ import annotations

import importlib
import threading
import time

import workers.executors as executors


def test_threads_arriving_together_all_find_their_executor(monkeypatch):
    monkeypatch.setattr(executors, "_EXECUTORS", {})
    real_import = importlib.import_module

    def slow_import(name, package=None):
        time.sleep(0.01)  # widen the window in which the table is being filled
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", slow_import)
    found: list[object] = []

    def first_run() -> None:
        found.append(executors.get_executor("sleep"))

    threads = [threading.Thread(target=first_run) for _ in range(8)]
    threads[0].start()
    time.sleep(0.025)  # the others arrive while the first is still loading
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(found) == 8 and all(executor is not None for executor in found)
    assert set(executors.load_executors()) >= {"echo", "sleep", "fgw", "python", "llm"}
