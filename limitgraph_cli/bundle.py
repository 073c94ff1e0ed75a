"""Export bundles: the format and its offline check. Standard library only.

A bundle is a zip holding an export (export.json, report.md, runs.csv, rd_points.csv), one
file per trace with its provenance chain (provenance/<trace id>.json) and, last,
manifest.json: the SHA-256 and size of every other file, and each trace's chain head.

The server writes bundles with these names (apps.reports) and checks them with this module
(`python manage.py verify_bundle`), as the client does (`limitgraph verify`): one checker
for both, usable where only the client is installed.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

BUNDLE_FORMAT = "limitgraph.bundle"
BUNDLE_VERSION = 1
MANIFEST_NAME = "manifest.json"
PROVENANCE_DIR = "provenance/"
GENESIS_HASH = "0" * 64
_READ_CHUNK = 1 << 16


def manifest_document(
    *, scope: dict[str, str], files: dict[str, dict[str, Any]], traces: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The manifest: `files` maps a name to {"sha256", "size"}, `traces` an id to its chain's end."""
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "created_at": datetime.now(UTC).isoformat(),
        "scope": scope,
        "files": files,
        "traces": traces,
    }


# The chain's hash, as apps.core.hashchain computes it (tests keep the two equal).
def _integral_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_integral_floats_as_ints(item) for item in value]
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(
        _integral_floats_as_ints(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def entry_hash(
    *, prev_hash: str, chain_id: str, seq: int, actor: str, action: str, data: Any, created_at: str
) -> str:
    """`created_at` as the export writes it: ISO 8601 in UTC (the hashed form)."""
    body = canonical_json(
        {
            "trace": str(chain_id),
            "seq": seq,
            "actor": actor,
            "action": action,
            "data": data,
            "created_at": created_at,
        }
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def chain_problem(document: dict[str, Any]) -> str | None:
    """Why a provenance file's chain does not hold, or None: each entry's hash recomputed, each
    linked to the one before, the count and last hash equal to the trace's recorded head."""
    trace_id = str(document.get("trace", ""))
    entries = document.get("entries")
    if not isinstance(entries, list):
        return "no list of entries"
    prev_hash = GENESIS_HASH
    for expected_seq, entry in enumerate(entries, start=1):
        try:
            if entry["seq"] != expected_seq:
                return f"entry {expected_seq} is missing or renumbered"
            if entry["prev_hash"] != prev_hash:
                return f"entry {expected_seq}: prev_hash does not match the previous entry"
            recomputed = entry_hash(
                prev_hash=prev_hash,
                chain_id=trace_id,
                seq=entry["seq"],
                actor=entry["actor"],
                action=entry["action"],
                data=entry["data"],
                created_at=entry["created_at"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            return f"entry {expected_seq} is malformed ({exc!r})"
        if recomputed != entry["hash"]:
            return f"entry {expected_seq}: hash does not match the entry's content"
        prev_hash = entry["hash"]
    if len(entries) != document.get("entry_count") or prev_hash != document.get("head_hash"):
        return f"the chain ends after entry {len(entries)}, not at the trace's recorded head"
    return None


@dataclass
class BundleReport:
    """What `verify_bundle` found. `valid` only when every list is empty."""

    path: str
    files: int = 0
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    broken_chains: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not (self.changed or self.missing or self.unexpected or self.broken_chains or self.problems)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "valid": self.valid}

    def lines(self) -> list[str]:
        """One line per finding, naming the file; a single OK line when there is none."""
        if self.valid:
            return [f"OK: {self.path}: {self.files} files match the manifest; every provenance chain holds"]
        out = [f"problem: {problem}" for problem in self.problems]
        out += [f"changed: {name}" for name in self.changed]
        out += [f"missing: {name}" for name in self.missing]
        out += [f"not in the manifest: {name}" for name in self.unexpected]
        out += [f"chain broken: {name}: {reason}" for name, reason in self.broken_chains.items()]
        return out


def _digest(stream: IO[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(_READ_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def verify_bundle(path: str) -> BundleReport:
    """Check a bundle offline: every file against the manifest (naming what changed, went
    missing or was added) and every provenance chain against its hashes and recorded head.

    Raises FileNotFoundError for a missing file; a file that is not a bundle is a report
    with a problem, not an exception.
    """
    report = BundleReport(path=str(path))
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        report.problems.append("not a zip file")
        return report
    with archive:
        names = [info.filename for info in archive.infolist() if not info.is_dir()]
        if MANIFEST_NAME not in names:
            report.problems.append(f"no {MANIFEST_NAME}")
            return report
        try:
            manifest = json.loads(archive.read(MANIFEST_NAME))
            listed: dict[str, dict[str, Any]] = manifest["files"]
            heads: dict[str, dict[str, Any]] = manifest.get("traces", {})
            if manifest.get("format") != BUNDLE_FORMAT or not isinstance(listed, dict):
                raise ValueError(manifest.get("format"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            report.problems.append(f"{MANIFEST_NAME} is not a {BUNDLE_FORMAT} manifest ({exc!r})")
            return report
        report.files = len(listed)
        present = set(names) - {MANIFEST_NAME}
        report.missing = sorted(set(listed) - present)
        report.unexpected = sorted(present - set(listed))
        for name in sorted(set(listed) & present):
            with archive.open(name) as member:
                sha256, size = _digest(member)
            expected = listed[name]
            if not isinstance(expected, dict) or (sha256, size) != (
                expected.get("sha256"),
                expected.get("size"),
            ):
                report.changed.append(name)
        for name in sorted(present):
            if name.startswith(PROVENANCE_DIR) and name.endswith(".json"):
                _check_chain(archive, name, heads, report)
    return report


def _check_chain(
    archive: zipfile.ZipFile, name: str, heads: dict[str, dict[str, Any]], report: BundleReport
) -> None:
    try:
        document = json.loads(archive.read(name))
        problem = chain_problem(document)
        head = heads.get(str(document.get("trace")))
    except (ValueError, AttributeError) as exc:
        report.broken_chains[name] = f"not a provenance document ({exc!r})"
        return
    if problem is None and (
        head is None
        or (head.get("head_hash"), head.get("entry_count"))
        != (document.get("head_hash"), document.get("entry_count"))
    ):
        problem = "its head differs from the manifest's"
    if problem is not None:
        report.broken_chains[name] = problem
