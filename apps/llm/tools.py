"""The tools an `llm` run may offer its model: name, description, JSON-schema parameters, and
what the tool does. Arguments the model returns are validated against the schema (jsonschema,
draft 2020-12) before anything runs; a fault goes back to the model as a tool error.

A tool is either a platform run kind (`run_kind`: the call becomes a child run of the same
session, submitted as the run's owner through run_submit, so governance, limits, tracing and
cancellation apply; `to_payload` maps arguments to the kind's payload, `from_result` the
child's result to what the model reads) or a plain function of the arguments (`function`),
run in the worker's process: only for quick, pure computations.

Shipped: `fgw_distance` (the fgw kind), `python` (the sandboxed python kind) and
`gaussian_rate` (a function: Shannon's rate of a Gaussian source). A deployment adds its own
with modules named in LLM_TOOL_MODULES, each calling `register_tool` when imported; the web
process and the workers import the same list.
"""

from __future__ import annotations

import copy
import importlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from jsonschema import Draft202012Validator

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # what both APIs accept as a function name
MAX_GRAPH_NODES = 64  # a tool call carries its graphs inline: small ones only
MAX_CODE_CHARS = 20_000
OUTPUT_CHARS = 4000  # of a python run's stdout/stderr, returned to the model


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    run_kind: str | None = None
    to_payload: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    from_result: Callable[[Any], Any] | None = None
    function: Callable[[dict[str, Any]], Any] | None = None
    validator: Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        Draft202012Validator.check_schema(self.parameters)
        if (self.run_kind is None) == (self.function is None):
            raise ValueError(f"Tool {self.name!r} needs exactly one of run_kind and function.")
        object.__setattr__(self, "validator", Draft202012Validator(self.parameters))

    def argument_errors(self, arguments: Any) -> list[str]:
        """Every schema violation, each naming where: empty when the arguments are valid."""
        errors = sorted(self.validator.iter_errors(arguments), key=lambda error: list(error.absolute_path))
        return [
            f"{'/'.join(str(p) for p in error.absolute_path) or '(arguments)'}: {error.message}"
            for error in errors
        ]

    def as_public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": copy.deepcopy(self.parameters),
            "run_kind": self.run_kind,
        }


_TOOLS: dict[str, Tool] = {}


def register_tool(tool: Tool) -> Tool:
    if not re.match(NAME_PATTERN, tool.name):
        raise ValueError(f"Tool name {tool.name!r} must match {NAME_PATTERN}.")
    if tool.name in _TOOLS and _TOOLS[tool.name] is not tool:
        raise ValueError(f"Tool {tool.name!r} is registered twice.")
    _TOOLS[tool.name] = tool
    return tool


def tool_get(name: str) -> Tool | None:
    return _TOOLS.get(name)


def tool_names() -> list[str]:
    return sorted(_TOOLS)


def load_tool_modules() -> None:
    """Import the modules LLM_TOOL_MODULES names; each registers its tools."""
    for module in settings.LLM_TOOL_MODULES:
        importlib.import_module(module)


# --- fgw_distance: the `fgw` run kind --------------------------------------------------------

_GRAPH = {
    "type": "object",
    "description": "A graph: its number of nodes and its undirected edges as [i, j] node pairs "
    "(0-based), optionally node features (n rows of equal length).",
    "properties": {
        "n": {"type": "integer", "minimum": 1, "maximum": MAX_GRAPH_NODES},
        "edges": {
            "type": "array",
            "items": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": MAX_GRAPH_NODES - 1},
                "minItems": 2,
                "maxItems": 2,
            },
            "maxItems": MAX_GRAPH_NODES * MAX_GRAPH_NODES,
        },
        "features": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 16},
            "maxItems": MAX_GRAPH_NODES,
        },
    },
    "required": ["n", "edges"],
    "additionalProperties": False,
}


def _fgw_payload(arguments: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {"source": arguments["source"], "target": arguments["target"]}
    if "alpha" in arguments:
        payload["alpha"] = float(arguments["alpha"])
    return payload


def _fgw_result(result: Any) -> dict[str, Any]:
    return {key: result.get(key) for key in ("distance", "converged", "n_iter")}


register_tool(
    Tool(
        name="fgw_distance",
        description="Fused Gromov-Wasserstein distance between two small graphs (0 means the same "
        "structure and features). Runs as a platform fgw run.",
        parameters={
            "type": "object",
            "properties": {
                "source": copy.deepcopy(_GRAPH),
                "target": copy.deepcopy(_GRAPH),
                "alpha": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "description": "Weight of the structure term against the features term (default 0.5).",
                },
            },
            "required": ["source", "target"],
            "additionalProperties": False,
        },
        run_kind="fgw",
        to_payload=_fgw_payload,
        from_result=_fgw_result,
    )
)


# --- python: the sandboxed `python` run kind -------------------------------------------------


def _python_payload(arguments: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {"code": arguments["code"]}
    if "timeout_s" in arguments:
        payload["timeout_s"] = float(arguments["timeout_s"])
    return payload


def _python_result(result: Any) -> dict[str, Any]:
    return {
        "exit_code": result.get("exit_code"),
        "stdout": str(result.get("stdout", ""))[-OUTPUT_CHARS:],
        "stderr": str(result.get("stderr", ""))[-OUTPUT_CHARS:],
    }


register_tool(
    Tool(
        name="python",
        description="Run a Python 3 program in the platform's sandbox (no network) in this session's "
        "working directory; returns its exit code and the end of its stdout and stderr.",
        parameters={
            "type": "object",
            "properties": {
                "code": {"type": "string", "minLength": 1, "maxLength": MAX_CODE_CHARS},
                "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
            },
            "required": ["code"],
            "additionalProperties": False,
        },
        run_kind="python",
        to_payload=_python_payload,
        from_result=_python_result,
    )
)


# --- gaussian_rate: a pure function ----------------------------------------------------------


def gaussian_rate(arguments: dict[str, Any]) -> dict[str, Any]:
    """R(D) = 1/2 log2(sigma^2 / D) bits per sample for D < sigma^2, else 0 (Shannon)."""
    variance, distortion = float(arguments["variance"]), float(arguments["distortion"])
    rate = 0.5 * math.log2(variance / distortion) if distortion < variance else 0.0
    return {"rate_bits": rate}


register_tool(
    Tool(
        name="gaussian_rate",
        description="Rate-distortion function of a memoryless Gaussian source: the bits per sample "
        "needed to code it with mean squared error at most `distortion`.",
        parameters={
            "type": "object",
            "properties": {
                "variance": {"type": "number", "exclusiveMinimum": 0},
                "distortion": {"type": "number", "exclusiveMinimum": 0},
            },
            "required": ["variance", "distortion"],
            "additionalProperties": False,
        },
        function=gaussian_rate,
    )
)
