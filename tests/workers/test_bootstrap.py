from __future__ import annotations

import os
import subprocess
import sys

from workers.bootstrap import _pin_gpu


def test_gpu_index_pins_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("GPU_INDEX", "3")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    _pin_gpu()
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"


def test_no_gpu_index_leaves_devices_alone(monkeypatch):
    monkeypatch.delenv("GPU_INDEX", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    _pin_gpu()
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_kernel_warm_up_runs_in_a_separate_process(monkeypatch):
    from workers import bootstrap

    seen = {}

    def fake_run(cmd, **kw):
        seen["cmd"], seen["cwd"] = cmd, kw["cwd"]
        return subprocess.CompletedProcess(cmd, 0, b"", b"")

    monkeypatch.setattr(bootstrap.subprocess, "run", fake_run)
    bootstrap._warm_up_kernels()
    assert seen["cmd"] == [sys.executable, "-m", "kernels.warmup"]
    assert (seen["cwd"] / "kernels" / "warmup.py").is_file()


def test_failed_kernel_warm_up_is_logged_not_raised(monkeypatch, caplog):
    from workers import bootstrap

    def failing_run(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, b"", b"no compiler")

    monkeypatch.setattr(bootstrap.subprocess, "run", failing_run)
    bootstrap._warm_up_kernels()
    assert "kernel warm-up failed" in caplog.text and "no compiler" in caplog.text


def test_warmup_module_warms_both_kernels(monkeypatch):
    from kernels import warmup
    from kernels.fgw import _entropic_compiled, _exact_compiled

    calls = []
    monkeypatch.setattr(_exact_compiled, "warm_up", lambda: calls.append("assignment"))
    monkeypatch.setattr(_entropic_compiled, "warm_up", lambda: calls.append("entropic"))
    warmup.main()
    assert calls == ["assignment", "entropic"]


def test_preloading_freezes_what_it_loaded_out_of_the_collectors_sight():
    import gc
    from types import SimpleNamespace

    from workers import bootstrap

    queues = SimpleNamespace(consume_from={})  # no graph queue: the modules every run needs
    worker = SimpleNamespace(app=SimpleNamespace(amqp=SimpleNamespace(queues=queues)))
    gc.unfreeze()
    try:
        bootstrap._preload_graph_modules(instance=worker)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
