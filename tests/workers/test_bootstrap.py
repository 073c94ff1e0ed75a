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
