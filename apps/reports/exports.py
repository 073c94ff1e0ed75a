"""Exports of a run, trace or session scope: JSON, CSV, Markdown and bundles, as byte streams.

Each format is a generator over the scope's records (apps.reports.selectors), so a large
session is written out while it is read and never held whole in memory:

- json: one document, complete and loss-free (every stored field, timestamps in UTC ISO 8601,
  numbers as stored); one record per line.
- csv: one row per run (`table="runs"`) or per RD point (`table="rd_points"`), with a header;
  JSON-valued cells (payload, result, error) hold compact JSON, so no cell starts with a
  spreadsheet formula character.
- markdown: a readable report with tables, linking each RD curve's plot.
- bundle: a zip of the above, one provenance file per trace and a manifest of SHA-256 hashes
  (the format and its checker: limitgraph_cli.bundle).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apps.reports.selectors import (
    ExportScope,
    loose_artifact_records,
    loose_trace_records,
    run_records,
    session_record,
)
from limitgraph_cli.bundle import MANIFEST_NAME, PROVENANCE_DIR, manifest_document

EXPORT_FORMAT = "limitgraph.export"
EXPORT_VERSION = 1
FORMATS = ("json", "csv", "markdown", "bundle")
CSV_TABLES = ("runs", "rd_points")
# Bytes gathered before a chunk is handed to the server: fewer, larger writes.
STREAM_CHUNK_BYTES = 64 * 1024
# A report shows payloads and results up to this many characters; the JSON export has them whole.
MARKDOWN_JSON_MAX_CHARS = 4000

RUN_CSV_COLUMNS = (
    "id",
    "session",
    "kind",
    "status",
    "progress",
    "priority",
    "queue",
    "attempts",
    "worker_hostname",
    "created_at",
    "queued_at",
    "started_at",
    "finished_at",
    "duration_seconds",
    "result_withheld",
    "trace",
    "payload",
    "result",
    "error",
)
RD_POINT_CSV_COLUMNS = ("run", "nodes", "level", "rate", "distortion", "is_knee")
_JSON_CELLS = {"payload", "result", "error"}


@dataclass(frozen=True)
class Export:
    content_type: str
    filename: str
    chunks: Iterator[bytes]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _buffered(pieces: Iterable[str]) -> Iterator[bytes]:
    buffer = bytearray()
    for piece in pieces:
        buffer += piece.encode()
        if len(buffer) >= STREAM_CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


# --- JSON ---------------------------------------------------------------------------------


def _json_list(name: str, records: Iterable[dict[str, Any]]) -> Iterator[str]:
    yield f',\n"{name}":['
    for index, record in enumerate(records):
        yield ("\n" if index == 0 else ",\n") + _dumps(record)
    yield "\n]"


def json_pieces(scope: ExportScope) -> Iterator[str]:
    header = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "scope": scope.as_json(),
        "session": session_record(scope.session),
    }
    yield _dumps(header)[:-1]  # left open: the lists follow
    yield from _json_list("runs", run_records(scope))
    yield from _json_list("traces", loose_trace_records(scope))
    yield from _json_list("artifacts", loose_artifact_records(scope))
    yield "}\n"


# --- CSV ----------------------------------------------------------------------------------


def _csv_cell(column: str, value: Any) -> Any:
    if column in _JSON_CELLS:
        return "" if value is None else _dumps(value)
    if column == "trace":
        return "" if value is None else value["id"]
    return "" if value is None else value


def _csv_pieces(header: tuple[str, ...], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
        if out.tell() >= STREAM_CHUNK_BYTES:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def run_csv_pieces(scope: ExportScope) -> Iterator[str]:
    rows = ([_csv_cell(column, run[column]) for column in RUN_CSV_COLUMNS] for run in run_records(scope))
    return _csv_pieces(RUN_CSV_COLUMNS, rows)


def rd_point_csv_pieces(scope: ExportScope) -> Iterator[str]:
    def rows() -> Iterator[list[Any]]:
        for run in run_records(scope):
            curve = run["rd_curve"]
            if curve is None:
                continue
            for point in curve["points"]:
                is_knee = point["level"] == curve["knee_level"]
                yield [run["id"], curve["nodes"], point["level"], point["rate"], point["distortion"], is_knee]

    return _csv_pieces(RD_POINT_CSV_COLUMNS, rows())


# --- Markdown -----------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#<>])")


class Code(str):
    """An id or a hash, shown as code: made by the platform, never holding a backtick."""


def md(text: Any) -> str:
    """Text for a Markdown table cell or line: one line, no markup, no raw HTML."""
    if text is None:
        return ""
    if isinstance(text, Code):
        return f"`{text}`"
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _fenced(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=2)
    if len(text) > MARKDOWN_JSON_MAX_CHARS:
        text = text[:MARKDOWN_JSON_MAX_CHARS] + "\n… (cut here; the JSON export has it whole)"
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}json\n{text}\n{fence}\n"


def _table(header: tuple[str, ...], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    yield "| " + " | ".join(header) + " |\n"
    yield "|" + "---|" * len(header) + "\n"
    for row in rows:
        yield "| " + " | ".join(md(cell) for cell in row) + " |\n"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def plot_url(base_url: str, run_id: str) -> str:
    return f"{base_url.rstrip('/')}/api/v1/plots/rd?run={run_id}&format=svg"


def markdown_pieces(scope: ExportScope, *, base_url: str) -> Iterator[str]:
    session = session_record(scope.session)
    yield f"# limitgraph report: session {md(session['name'])}\n\n"
    yield (
        f"Exported {datetime.now(UTC).isoformat(timespec='seconds')} · scope: {scope.type} "
        f"`{scope.id}` · session `{session['id']}` of {md(session['owner_username'])}, "
        f"created {session['created_at']}\n\n"
    )
    yield "## Runs\n\n"
    run_rows = (
        (
            Code(run["id"]),
            run["kind"],
            run["status"],
            _seconds(run["duration_seconds"]),
            run["created_at"],
            run["finished_at"],
        )
        for run in run_records(scope)
    )
    yield from _table(("run", "kind", "status", "duration (s)", "created", "finished"), run_rows)

    yield "\n## Rate-distortion curves\n\n"
    curves = 0
    for run in run_records(scope):
        curve = run["rd_curve"]
        if curve is None:
            continue
        curves += 1
        knee = (
            "no knee"
            if curve["knee_level"] is None
            else f"knee at level {curve['knee_level']} (rate {curve['knee_rate']:.6g}, "
            f"distortion {curve['knee_distortion']:.6g})"
        )
        yield f"### Run `{run['id']}`: {curve['nodes']} nodes, {knee}\n\n"
        yield f"![RD curve of run {run['id']}]({plot_url(base_url, run['id'])})\n\n"
        points = (
            (
                point["level"],
                f"{point['rate']:.6g}",
                f"{point['distortion']:.6g}",
                "knee" if point["level"] == curve["knee_level"] else "",
            )
            for point in curve["points"]
        )
        yield from _table(("level", "rate", "distortion", ""), points)
        yield "\n"
    if not curves:
        yield "None in this scope.\n"

    yield "\n## Governance flags\n\n"
    flags = [
        (Code(trace["id"]), flag["type"], flag["severity"], flag["state"], flag["detector"], flag["reason"])
        for trace in _traces(scope)
        for flag in trace["flags"]
    ]
    if flags:
        yield from _table(("trace", "flag", "severity", "state", "detector", "reason"), flags)
    else:
        yield "None.\n"

    yield "\n## Provenance\n\n"
    heads = ((Code(trace["id"]), trace["entry_count"], Code(trace["head_hash"])) for trace in _traces(scope))
    yield from _table(("trace", "entries", "head hash"), heads)

    yield "\n## Run details\n"
    for run in run_records(scope):
        yield f"\n### `{run['id']}`: {run['kind']}, {run['status']}\n\nPayload:\n\n{_fenced(run['payload'])}"
        if run["result_withheld"]:
            yield "\nResult withheld for review.\n"
        elif run["result"] is not None:
            yield f"\nResult:\n\n{_fenced(run['result'])}"
        if run["error"] is not None:
            yield f"\nError:\n\n{_fenced(run['error'])}"


def _traces(scope: ExportScope) -> Iterator[dict[str, Any]]:
    for run in run_records(scope):
        if run["trace"] is not None:
            yield run["trace"]
    yield from loose_trace_records(scope)


# --- Bundle -------------------------------------------------------------------------------


class _Sink:
    """A write-only file for zipfile (no tell/seek, so it writes data descriptors): the
    bytes written so far are taken out and streamed while the archive is still open."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def provenance_documents(scope: ExportScope) -> Iterator[dict[str, Any]]:
    for trace in _traces(scope):
        yield {
            "trace": trace["id"],
            "run": trace["run"],
            "head_hash": trace["head_hash"],
            "entry_count": trace["entry_count"],
            "entries": trace["provenance"],
        }


def bundle_chunks(scope: ExportScope, *, base_url: str) -> Iterator[bytes]:
    sink = _Sink()
    files: dict[str, dict[str, Any]] = {}
    heads: dict[str, dict[str, Any]] = {}

    def provenance_files() -> Iterator[tuple[str, Iterable[str]]]:
        for document in provenance_documents(scope):
            heads[document["trace"]] = {
                "head_hash": document["head_hash"],
                "entry_count": document["entry_count"],
            }
            yield (
                f"{PROVENANCE_DIR}{document['trace']}.json",
                [json.dumps(document, ensure_ascii=False, indent=1)],
            )

    contents: list[tuple[str, Iterable[str]]] = [
        ("export.json", json_pieces(scope)),
        ("report.md", markdown_pieces(scope, base_url=base_url)),
        ("runs.csv", run_csv_pieces(scope)),
        ("rd_points.csv", rd_point_csv_pieces(scope)),
    ]
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, pieces in [*contents, *provenance_files()]:
            digest, size = hashlib.sha256(), 0
            with archive.open(name, "w", force_zip64=True) as entry:
                for piece in pieces:
                    data = piece.encode()
                    entry.write(data)
                    digest.update(data)
                    size += len(data)
                    if len(sink.buffer) >= STREAM_CHUNK_BYTES:
                        yield sink.take()
            files[name] = {"sha256": digest.hexdigest(), "size": size}
        manifest = manifest_document(scope=scope.as_json(), files=files, traces=heads)
        archive.writestr(MANIFEST_NAME, json.dumps(manifest, indent=2))
    yield sink.take()


# --- Entry point --------------------------------------------------------------------------


def export_render(
    *, scope: ExportScope, export_format: str, table: str = "runs", base_url: str = ""
) -> Export:
    """The export of `scope` in `export_format`; `base_url` makes the report's plot links absolute."""
    stem = f"limitgraph-{scope.type}-{scope.id}"
    if export_format == "json":
        return Export("application/json", f"{stem}.json", _buffered(json_pieces(scope)))
    if export_format == "csv":
        if table not in CSV_TABLES:
            raise ValueError(f"table must be one of {CSV_TABLES}")
        pieces = run_csv_pieces(scope) if table == "runs" else rd_point_csv_pieces(scope)
        suffix = "" if table == "runs" else "-rd-points"
        return Export("text/csv; charset=utf-8", f"{stem}{suffix}.csv", _buffered(pieces))
    if export_format == "markdown":
        return Export(
            "text/markdown; charset=utf-8", f"{stem}.md", _buffered(markdown_pieces(scope, base_url=base_url))
        )
    if export_format == "bundle":
        return Export("application/zip", f"{stem}.zip", bundle_chunks(scope, base_url=base_url))
    raise ValueError(f"export_format must be one of {FORMATS}")
