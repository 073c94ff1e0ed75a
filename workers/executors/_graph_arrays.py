"""Worker side of the graph kinds (fgw, fgw_batch, rd_sweep): validated payloads ->
arrays -> kernels. Imported inside executors only."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from kernels.backend import array_device, backend_name, get_backend, to_numpy
from kernels.graphs import adjacency, shortest_path


def structure_of(graph: dict[str, Any]) -> np.ndarray:
    if "structure" in graph:
        return np.asarray(graph["structure"], dtype=np.float64)
    build = adjacency if graph.get("structure_kind", "shortest_path") == "adjacency" else shortest_path
    return build(graph["edges"], n=graph["n"], kind="edges")


def weights_of(graph: dict[str, Any]) -> np.ndarray | None:
    return np.asarray(graph["weights"], dtype=np.float64) if "weights" in graph else None


def features_of(graph: dict[str, Any]) -> np.ndarray | None:
    return np.asarray(graph["features"], dtype=np.float64) if "features" in graph else None


def feature_cost(source: dict[str, Any], target: dict[str, Any]) -> np.ndarray:
    """M[i, j] = ||x_i - y_j||²; zeros (a pure structure match) when neither graph has features."""
    x, y = features_of(source), features_of(target)
    if x is None or y is None:
        return np.zeros((source["n"], target["n"]))
    return np.maximum((x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T, 0.0)


def problem_of(pair: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any, Any]:
    source, target = pair["source"], pair["target"]
    return (
        feature_cost(source, target),
        structure_of(source),
        structure_of(target),
        weights_of(source),
        weights_of(target),
    )


def solver_options(payload: dict[str, Any], backend: str) -> dict[str, Any]:
    """Kernel keywords of a payload; `backend` is the worker's choice (RunContext.backend)."""
    options = {
        "alpha": payload.get("alpha", 0.5),
        "method": payload.get("method", "exact"),
        "epsilon": payload.get("epsilon", 1e-2),
        "backend": backend,
    }
    if payload.get("max_iter") is not None:
        options["max_iter"] = payload["max_iter"]
    return options


def describe_backend(name: str) -> tuple[str, str]:
    xp = get_backend(name)
    probe = xp.zeros(1)
    return backend_name(xp), str(array_device(probe))


def result_of(result: Any, *, backend: tuple[str, str], seconds: float, with_plan: bool) -> dict[str, Any]:
    """JSON for one FGWResult; `backend` is describe_backend()'s (name, device)."""
    name, device = backend
    out: dict[str, Any] = {
        "distance": float(result.distance),
        "n_iter": int(result.n_iter),
        "converged": bool(result.converged),
        "backend": name,
        "device": device,
        "seconds": round(seconds, 6),
    }
    if with_plan and result.plan is not None:
        out["plan"] = to_numpy(result.plan).tolist()
    return out


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.started
