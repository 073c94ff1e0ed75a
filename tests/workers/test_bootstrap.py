from __future__ import annotations

import os

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


def test_kernel_warm_up_runs_the_solvers_warm_ups(monkeypatch):
    from kernels import assignment, entropic
    from workers import bootstrap

    calls = []
    monkeypatch.setattr(assignment, "warm_up", lambda: calls.append("assignment"))
    monkeypatch.setattr(entropic, "warm_up", lambda: calls.append("entropic"))
    bootstrap._warm_up_kernels()
    assert calls == ["assignment", "entropic"]


def test_failed_kernel_warm_up_is_logged_not_raised(monkeypatch, caplog):
    from kernels import assignment
    from workers import bootstrap

    def broken() -> None:
        raise RuntimeError("no compiler")

    monkeypatch.setattr(assignment, "warm_up", broken)
    bootstrap._warm_up_kernels()
    assert "kernel warm-up failed" in caplog.text
