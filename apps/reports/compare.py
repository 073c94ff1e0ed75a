"""Comparing runs: which payload and result fields differ, summary statistics of their
metrics, and the best run by one of them. Plain Python (statistics), no array code.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from apps.core.exceptions import NotFound, ValidationFailed
from apps.core.hashchain import canonical_json, sha256_hex
from apps.runs.models import Run, RunStatus
from apps.runs.selectors import run_list_for_user

MAX_COMPARE_RUNS = 50
MIN_COMPARE_RUNS = 2
# A value whose JSON is longer than this is shown by its size and digest, not whole.
MAX_SHOWN_VALUE_CHARS = 200
# Differences listed per section (payload, result); the rest are counted.
MAX_DIFFERENCES = 500
GOALS = ("min", "max")
# Higher is better for these; lower for every other metric (durations, distances, distortion).
HIGHER_IS_BETTER = {"confidence", "accuracy", "score"}
# A kind's own metric when the request names none and every run is of that kind.
KIND_METRICS = {
    "fgw": "distance",
    "fgw_batch": "distance",
    "rd_sweep": "distortion",
    "inference": "confidence",
}
DEFAULT_METRIC = "duration_seconds"
SUMMARY_METRICS = ("duration_seconds", "distance", "distortion", "rate", "confidence")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _visible_result(run: Run) -> Any:
    return None if run.result_withheld else run.result


def _knee(run: Run, field: str) -> float | None:
    result = _visible_result(run)
    knee = result.get("knee") if isinstance(result, dict) else None
    return _number(knee.get(field)) if isinstance(knee, dict) else None


def _mean_distance(run: Run) -> float | None:
    result = _visible_result(run)
    items = result.get("results") if isinstance(result, dict) else None
    values = [_number(item.get("distance")) for item in items or [] if isinstance(item, dict)]
    values = [value for value in values if value is not None]
    return statistics.fmean(values) if values else None


# (kind, metric) -> how that kind reports it; other metrics are the result's own top-level numbers.
_KIND_EXTRACTORS: dict[tuple[str, str], Callable[[Run], float | None]] = {
    ("rd_sweep", "distortion"): lambda run: _knee(run, "distortion"),
    ("rd_sweep", "rate"): lambda run: _knee(run, "rate"),
    ("fgw_batch", "distance"): _mean_distance,
}


def metric_value(run: Run, metric: str) -> float | None:
    """`metric` of `run`, or None where it has none: only succeeded runs count (a cancelled run's
    short duration is no achievement), and a withheld result shows nothing."""
    if run.status != RunStatus.SUCCEEDED:
        return None
    if metric == "duration_seconds":
        return _number(run.duration_seconds)
    extractor = _KIND_EXTRACTORS.get((run.kind, metric))
    if extractor is not None:
        return extractor(run)
    result = _visible_result(run)
    return _number(result.get(metric)) if isinstance(result, dict) else None


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of a JSON object by dotted path; lists are compared whole."""
    if isinstance(value, dict) and value:
        leaves: dict[str, Any] = {}
        for key, item in value.items():
            leaves.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return leaves
    return {prefix or "$": value}


def _shown(value: Any) -> Any:
    text = canonical_json(value)
    if len(text) <= MAX_SHOWN_VALUE_CHARS:
        return value
    size = f"{len(value)} items" if isinstance(value, list | dict) else f"{len(text)} characters"
    return {"summary": f"{type(value).__name__} of {size}", "sha256": sha256_hex(text)}


def _differences(runs: Sequence[Run], values: Sequence[Any]) -> dict[str, Any]:
    flat = [_flatten(value) if value is not None else {} for value in values]
    paths = sorted(set().union(*flat))
    different, same = [], 0
    for path in paths:
        present = {
            str(run.pk): leaves[path] for run, leaves in zip(runs, flat, strict=True) if path in leaves
        }
        digests = {canonical_json(value) for value in present.values()}
        if len(present) == len(runs) and len(digests) == 1:
            same += 1
            continue
        different.append(
            {
                "path": path,
                "values": {run_id: _shown(value) for run_id, value in present.items()},
                "missing": [str(run.pk) for run in runs if str(run.pk) not in present],
            }
        )
    return {
        "differences": different[:MAX_DIFFERENCES],
        "different": len(different),
        "same": same,
        "truncated": len(different) > MAX_DIFFERENCES,
    }


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else None,
    }


def _default_metric(runs: Sequence[Run]) -> str:
    kinds = {run.kind for run in runs}
    return KIND_METRICS.get(kinds.pop(), DEFAULT_METRIC) if len(kinds) == 1 else DEFAULT_METRIC


def run_compare(
    *,
    user: AbstractBaseUser,
    run_ids: Sequence[uuid.UUID | str],
    metric: str | None = None,
    goal: str | None = None,
) -> dict[str, Any]:
    """Per-field differences of the runs' payloads and results, summary statistics of their
    metrics and the best run by `metric` (lowest, or highest for confidence-like metrics or
    with goal="max"). Runs the user may not see are NotFound, named in `fields`."""
    ordered = list(dict.fromkeys(str(run_id) for run_id in run_ids))
    if not MIN_COMPARE_RUNS <= len(ordered) <= MAX_COMPARE_RUNS:
        raise ValidationFailed(
            fields={
                "runs": [f"Give {MIN_COMPARE_RUNS} to {MAX_COMPARE_RUNS} distinct runs; got {len(ordered)}."]
            }
        )
    if goal is not None and goal not in GOALS:
        raise ValidationFailed(fields={"goal": [f"One of {', '.join(GOALS)}."]})
    found = {str(run.pk): run for run in run_list_for_user(user=user).filter(pk__in=ordered)}
    missing = [run_id for run_id in ordered if run_id not in found]
    if missing:
        raise NotFound(f"{len(missing)} of the runs were not found.", fields={"runs": missing})
    runs = [found[run_id] for run_id in ordered]

    metric = metric or _default_metric(runs)
    goal = goal or ("max" if metric in HIGHER_IS_BETTER else "min")
    summary = {}
    for name in dict.fromkeys([*SUMMARY_METRICS, metric]):
        values = [value for run in runs if (value := metric_value(run, name)) is not None]
        if values:
            summary[name] = _summary(values)
    scored = [
        (value, index) for index, run in enumerate(runs) if (value := metric_value(run, metric)) is not None
    ]
    best = None
    if scored:
        sign = 1 if goal == "min" else -1  # ties go to the run given first
        value, index = min(scored, key=lambda pair: (sign * pair[0], pair[1]))
        best = {"run": str(runs[index].pk), "value": value}
    return {
        "runs": [
            {
                "id": str(run.pk),
                "kind": run.kind,
                "status": run.status,
                "session": str(run.session_id),
                "duration_seconds": run.duration_seconds,
                "metric": metric_value(run, metric),
            }
            for run in runs
        ],
        "metric": metric,
        "goal": goal,
        "best": best,
        "without_metric": [str(run.pk) for run in runs if metric_value(run, metric) is None],
        "summary": summary,
        "payload": _differences(runs, [run.payload for run in runs]),
        "result": _differences(runs, [_visible_result(run) for run in runs]),
    }
