"""The client's chain check hashes as the server does (apps.core.hashchain), so bundles
verify offline with the client alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from apps.core.hashchain import entry_hash as server_entry_hash
from limitgraph_cli.bundle import entry_hash


def test_the_client_hashes_provenance_entries_as_the_server_does():
    created = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    data = {
        "ratio": 2.0,
        "tiny": 1e-300,
        "big": 1e20,
        "text": "ünïcode ✓",
        "nested": [1.0, {"b": None, "a": True}],
    }
    fields = {
        "prev_hash": "ab" * 32,
        "chain_id": "7f0c",
        "seq": 3,
        "actor": "worker@x",
        "action": "run.completed",
    }

    ours = entry_hash(**fields, data=data, created_at=created.astimezone(UTC).isoformat())

    assert ours == server_entry_hash(**fields, data=data, created_at=created)
