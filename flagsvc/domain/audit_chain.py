"""The audit hash chain: each event's hash covers its content and the previous hash.

Altering, inserting or removing any event breaks every later link, which
``flagsvc audit verify`` reports. Canonical JSON (sorted keys, no spaces) keeps the
hash the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """Serialise ``value`` the one way the chain hashes it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    """Hash one event's content chained to the hash of the event before it."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(canonical_json(content).encode("utf-8"))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    """The stored form of an event as the verifier reads it."""

    seq: int
    prev_hash: str
    hash: str
    content: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of walking the chain: how far it holds and where it first breaks."""

    valid: bool
    events_checked: int
    first_broken_seq: int | None = None
    reason: str | None = None


def verify(events: Iterable[ChainedEvent]) -> ChainReport:
    """Walk ``events`` in sequence order and name the first broken link."""
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    for event in events:
        problem = _link_problem(event, expected_prev, expected_seq)
        if problem:
            return ChainReport(False, checked, event.seq, problem)
        expected_prev, expected_seq, checked = event.hash, event.seq + 1, checked + 1
    return ChainReport(True, checked)


def _link_problem(event: ChainedEvent, expected_prev: str, expected_seq: int) -> str | None:
    if event.seq != expected_seq:
        return f"sequence jumps from {expected_seq - 1} to {event.seq}: events were removed"
    if event.prev_hash != expected_prev:
        return "prev_hash does not match the previous event's hash"
    if event_hash(event.prev_hash, event.content) != event.hash:
        return "content does not match its hash: the event was altered"
    return None
