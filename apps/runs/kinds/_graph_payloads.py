"""Payload validation shared by the graph kinds (fgw, fgw_batch, rd_sweep).

A structure matrix must be symmetric with non-negative entries (the kernels'
square loss assumes it); a graph gives `structure` or `edges`, never both.

Plain Python checks (the web process does not import kernels/): shapes,
finiteness and the size limits, each named in its error so a client knows
which limit it hit. A graph is

    {"structure": [[...n x n...]]}                       dense structure matrix, or
    {"n": 5, "edges": [[0, 1], [1, 2, 0.5], ...],         an edge list, turned into a
     "structure_kind": "shortest_path" | "adjacency"}    structure matrix on the worker
    plus optional "features" (n x d) and "weights" (n, non-negative, sum 1), or
    {"artifact": "<id>"}                                  the same JSON uploaded as an artifact of
                                                          the session (for graphs over the body limit)
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from rest_framework import serializers

from apps.artifacts.selectors import artifact_get_for_user
from apps.core.queues import Queue
from apps.runs.devices import queue_for_device
from apps.runs.kinds._strict import (
    StrictChoiceField,
    StrictFloatField,
    StrictIntegerField,
    StrictPayloadSerializer,
    is_finite,
)

WEIGHT_SUM_TOLERANCE = 1e-6
GRAPH_KEYS = frozenset({"structure", "n", "edges", "structure_kind", "features", "weights"})
METHODS = ("exact", "entropic")
BACKENDS = ("auto", "numpy", "torch", "cupy")
DEVICES = ("auto", "cpu", "gpu")
STRUCTURE_KINDS = ("shortest_path", "adjacency")
MAX_ITER_LIMIT = 100_000


def _limit(name: str) -> int:
    return int(getattr(settings, name))


MAX_ABS_VALUE = 1e100
"""Largest magnitude of a feature, structure or weight entry: the kernels square and
sum these (feature costs, the clustering embedding's products), and beyond about 1e150
float64 overflows to inf."""


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not is_finite(value):
        raise serializers.ValidationError(f"{where} must be a finite number.")
    if abs(value) > MAX_ABS_VALUE:
        raise serializers.ValidationError(f"{where} must be at most {MAX_ABS_VALUE:g} in magnitude.")
    return float(value)


def _matrix(value: Any, where: str, *, rows: int | None = None, cols: int | None = None) -> list[list[float]]:
    if not isinstance(value, list) or not value or not all(isinstance(row, list) for row in value):
        raise serializers.ValidationError(f"{where} must be a non-empty list of rows.")
    width = len(value[0])
    if rows is not None and len(value) != rows:
        raise serializers.ValidationError(f"{where} must have {rows} rows, got {len(value)}.")
    if cols is not None and width != cols:
        raise serializers.ValidationError(f"{where} must have {cols} columns, got {width}.")
    for index, row in enumerate(value):
        if len(row) != width:
            raise serializers.ValidationError(
                f"{where} row {index} has {len(row)} entries, expected {width}."
            )
        for item in row:
            _number(item, f"{where} entries")
    return value


def _check_structure(structure: list[list[float]]) -> None:
    n = len(structure)
    for i in range(n):
        for j in range(i, n):
            if structure[i][j] < 0:
                raise serializers.ValidationError(
                    f"structure[{i}][{j}] is {structure[i][j]}; entries must be non-negative."
                )
            if structure[i][j] != structure[j][i]:
                raise serializers.ValidationError(
                    f"structure must be symmetric: structure[{i}][{j}] = {structure[i][j]} but "
                    f"structure[{j}][{i}] = {structure[j][i]}."
                )


def _graph_artifact(graph: dict[str, Any], where: str, context: dict[str, Any]) -> dict[str, Any]:
    """A graph uploaded as a JSON artifact of the run's session. Its contents are checked
    with validate_graph on the worker that loads it (the web process reads no large input)."""
    if set(graph) != {"artifact"}:
        raise serializers.ValidationError(
            {where: ['A graph given by artifact is {"artifact": "<id>"} alone.']}
        )
    user, session = context.get("user"), context.get("session")
    try:
        artifact_id = uuid.UUID(str(graph["artifact"]))
    except ValueError:
        raise serializers.ValidationError({where: ["artifact must be an artifact id (a UUID)."]}) from None
    artifact = artifact_get_for_user(user=user, artifact_id=artifact_id) if user is not None else None
    if artifact is None or (session is not None and artifact.session_id != session.pk):
        raise serializers.ValidationError(
            {where: [f"Artifact {artifact_id} not found in this run's session."]}
        )
    if not artifact.content_type.startswith("application/json"):
        raise serializers.ValidationError(
            {where: [f"A graph artifact must be JSON (application/json), not {artifact.content_type}."]}
        )
    limit = _limit("GRAPH_ARTIFACT_MAX_BYTES")
    if artifact.size > limit:
        raise serializers.ValidationError(
            {where: [f"Artifact is {artifact.size} bytes; the limit is {limit} (GRAPH_ARTIFACT_MAX_BYTES)."]}
        )
    return {"artifact": str(artifact.pk), "sha256": artifact.sha256, "n": None}


def validate_graph(graph: Any, where: str, *, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check one graph against the limits; returns it with `n` set (None for an artifact,
    whose contents the worker checks when it loads them)."""
    if not isinstance(graph, dict):
        raise serializers.ValidationError({where: ["Must be a JSON object."]})
    if "artifact" in graph:
        return _graph_artifact(graph, where, context or {})
    max_nodes = _limit("FGW_MAX_NODES")
    try:
        unknown = sorted(set(graph) - GRAPH_KEYS)
        if unknown:
            raise serializers.ValidationError(
                f"unknown key(s) {', '.join(unknown)}; a graph takes {', '.join(sorted(GRAPH_KEYS))}."
            )
        if "structure" in graph and ("edges" in graph or "structure_kind" in graph):
            raise serializers.ValidationError(
                "give either `structure` (n x n) or `n` and `edges` (with `structure_kind`), not both."
            )
        if "structure" in graph:
            n = len(graph["structure"]) if isinstance(graph["structure"], list) else 0
            if n > max_nodes:
                raise serializers.ValidationError(
                    f"graph has {n} nodes; the limit is {max_nodes} nodes per graph (FGW_MAX_NODES)."
                )
            _matrix(graph["structure"], "structure", rows=n, cols=n)
            _check_structure(graph["structure"])
            if "n" in graph and graph["n"] != n:
                raise serializers.ValidationError(f"n is {graph['n']!r} but structure has {n} rows.")
        elif "edges" in graph:
            n = graph.get("n")
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise serializers.ValidationError("n (the number of nodes) must be a positive integer.")
            if n > max_nodes:
                raise serializers.ValidationError(
                    f"graph has {n} nodes; the limit is {max_nodes} nodes per graph (FGW_MAX_NODES)."
                )
            edges = graph["edges"]
            if not isinstance(edges, list) or len(edges) > n * n:
                raise serializers.ValidationError("edges must be a list of at most n*n [i, j] or [i, j, w].")
            for edge in edges:
                if not isinstance(edge, list) or len(edge) not in (2, 3):
                    raise serializers.ValidationError("each edge must be [i, j] or [i, j, weight].")
                for node in edge[:2]:
                    if isinstance(node, bool) or not isinstance(node, int) or not 0 <= node < n:
                        raise serializers.ValidationError(
                            f"edge endpoint {node!r} is not a node in 0..{n - 1}."
                        )
                if len(edge) == 3 and _number(edge[2], "edge weight") <= 0:
                    raise serializers.ValidationError("edge weights must be positive.")
            kind = graph.get("structure_kind", "shortest_path")
            if kind not in STRUCTURE_KINDS:
                raise serializers.ValidationError(
                    f"structure_kind must be one of {', '.join(STRUCTURE_KINDS)}."
                )
        else:
            raise serializers.ValidationError("a graph needs `structure` (n x n) or `n` and `edges`.")
        if "features" in graph:
            max_dim = _limit("FGW_MAX_FEATURE_DIM")
            features = graph["features"]
            width = (
                len(features[0])
                if isinstance(features, list) and features and isinstance(features[0], list)
                else 0
            )
            if width > max_dim:
                raise serializers.ValidationError(
                    f"features have dimension {width}; the limit is {max_dim} (FGW_MAX_FEATURE_DIM)."
                )
            _matrix(features, "features", rows=n)
        if "weights" in graph:
            weights = graph["weights"]
            if not isinstance(weights, list) or len(weights) != n:
                raise serializers.ValidationError(f"weights must be a list of {n} numbers.")
            values = [_number(w, "weights") for w in weights]
            if min(values) < 0 or abs(sum(values) - 1.0) > WEIGHT_SUM_TOLERANCE:
                raise serializers.ValidationError("weights must be non-negative and sum to 1.")
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({where: exc.detail}) from None
    return {**graph, "n": n}


class SolverOptionsSerializer(StrictPayloadSerializer):
    alpha = StrictFloatField(min_value=0.0, max_value=1.0, default=0.5)
    method = StrictChoiceField(choices=METHODS, default="exact")
    epsilon = StrictFloatField(min_value=1e-6, max_value=10.0, default=1e-2)
    max_iter = StrictIntegerField(min_value=1, max_value=MAX_ITER_LIMIT, required=False)
    backend = StrictChoiceField(
        choices=BACKENDS,
        default="auto",
        help_text="auto: the worker's best (CuPy on a GPU worker, else numpy); torch/cupy need a live "
        "worker that offers them.",
    )
    device = StrictChoiceField(
        choices=DEVICES, default="auto", help_text="gpu: only on a live GPU worker (else 409 at submission)."
    )


def check_pair(source: dict[str, Any], target: dict[str, Any]) -> None:
    if source["n"] is None or target["n"] is None:
        return  # an artifact: checked once loaded
    if ("features" in source) != ("features" in target):
        raise serializers.ValidationError({"target": ["give features for both graphs or for neither."]})
    if "features" in source and len(source["features"][0]) != len(target["features"][0]):
        raise serializers.ValidationError({"target": ["features of both graphs need the same dimension."]})


class GraphPairSerializer(StrictPayloadSerializer):
    source = serializers.JSONField()
    target = serializers.JSONField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        source = validate_graph(attrs["source"], "source", context=self.context)
        target = validate_graph(attrs["target"], "target", context=self.context)
        check_pair(source, target)
        return {**attrs, "source": source, "target": target}


def check_plan_size(pairs: list[dict[str, Any]], return_plan: bool) -> None:
    """Plans are n*m floats each: refuse what would not fit in a result."""
    if not return_plan:
        return
    sized = [pair for pair in pairs if pair["source"]["n"] is not None and pair["target"]["n"] is not None]
    entries = sum(pair["source"]["n"] * pair["target"]["n"] for pair in sized)
    limit = _limit("FGW_MAX_PLAN_ENTRIES")
    if entries > limit:
        raise serializers.ValidationError(
            {
                "return_plan": [
                    f"plans would hold {entries} entries; the limit is {limit} (FGW_MAX_PLAN_ENTRIES)."
                ]
            }
        )


def graph_queue(payload: dict[str, Any]) -> str:
    """The queue of a graph run, checked against what live workers offer (apps.runs.devices)."""
    return queue_for_device(
        backend=payload.get("backend", "auto"), device=payload.get("device", "auto"), default=Queue.CPU
    )
