"""Worker side of the graph kinds (fgw, fgw_batch, rd_sweep): validated payloads ->
arrays -> kernels. Imported inside executors only."""

from __future__ import annotations

import json
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


class GraphArtifactInvalid(ValueError):
    """A graph uploaded as an artifact that does not pass the graph checks."""


def _flatten(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten(item) for item in detail)
    return str(detail)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def load_graph(graph: dict[str, Any], where: str) -> dict[str, Any]:
    """An inline graph as it is; a graph artifact read, parsed and checked like an inline one."""
    if "artifact" not in graph:
        return graph
    from rest_framework import serializers

    from apps.artifacts.models import Artifact
    from apps.artifacts.services import artifact_open
    from apps.runs.kinds._graph_payloads import validate_graph

    artifact = Artifact.objects.filter(pk=graph["artifact"]).first()
    if artifact is None or artifact.sha256 != graph.get("sha256"):
        raise GraphArtifactInvalid(f"{where}: artifact {graph['artifact']} is gone or was replaced")
    try:
        with artifact_open(artifact=artifact) as stream:
            data = json.load(stream, parse_constant=_reject_constant)
        return validate_graph(data, where)
    except (ValueError, RecursionError) as exc:
        raise GraphArtifactInvalid(f"{where} (artifact {artifact.pk}) is not valid JSON: {exc}") from None
    except serializers.ValidationError as exc:
        raise GraphArtifactInvalid(f"{where} (artifact {artifact.pk}): {_flatten(exc.detail)}") from None


def load_pair(pair: dict[str, Any]) -> dict[str, Any]:
    """A pair with both graphs loaded, and the checks an artifact deferred to this point."""
    from rest_framework import serializers

    from apps.runs.kinds._graph_payloads import check_pair

    loaded = {
        **pair,
        "source": load_graph(pair["source"], "source"),
        "target": load_graph(pair["target"], "target"),
    }
    try:
        check_pair(loaded["source"], loaded["target"])
    except serializers.ValidationError as exc:
        raise GraphArtifactInvalid(_flatten(exc.detail)) from None
    return loaded


def check_plan_entries(pairs: list[dict[str, Any]], with_plan: bool) -> None:
    """FGW_MAX_PLAN_ENTRIES over loaded graphs (inline ones were checked at submission)."""
    from django.conf import settings

    if not with_plan:
        return
    entries = sum(pair["source"]["n"] * pair["target"]["n"] for pair in pairs)
    limit = settings.FGW_MAX_PLAN_ENTRIES
    if entries > limit:
        raise GraphArtifactInvalid(
            f"plans would hold {entries} entries; the limit is {limit} (FGW_MAX_PLAN_ENTRIES)"
        )


def store_large_plan(out: dict[str, Any], artifacts: Any, name: str) -> dict[str, Any]:
    """Move a plan over FGW_INLINE_PLAN_ENTRIES out of the result into a JSON artifact."""
    from django.conf import settings

    plan = out.get("plan")
    if plan is None or len(plan) * len(plan[0]) <= settings.FGW_INLINE_PLAN_ENTRIES:
        return out
    reference = artifacts.put(name, json.dumps(plan).encode(), content_type="application/json")
    rest = {key: value for key, value in out.items() if key != "plan"}
    return {**rest, "plan_artifact": reference}


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
