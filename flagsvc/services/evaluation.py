"""Server-side evaluation on the same engine the SDK runs, over a cached snapshot.

The cache holds one compiled snapshot per environment and rebuilds it only when
the audit head moved, so a burst of ``evaluate`` calls costs one ``max(seq)``
lookup each instead of a snapshot build each.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flagsvc_sdk.engine import Result
from flagsvc_sdk.engine import Snapshot
from flagsvc_sdk.engine import evaluate
from flagsvc_sdk.engine import load_snapshot
from sqlalchemy.orm import Session

from flagsvc.services.snapshots import audit_head
from flagsvc.services.snapshots import build_snapshot


@dataclass(frozen=True, slots=True)
class CachedSnapshot:
    """One environment's snapshot as JSON-ready data and compiled for the engine."""

    version: int
    wire: Mapping[str, Any]
    compiled: Snapshot


class SnapshotCache:
    """Per-process cache of each environment's newest snapshot."""

    def __init__(self) -> None:
        self._entries: dict[str, CachedSnapshot] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, environment_key: str) -> CachedSnapshot:
        """The environment's snapshot, rebuilt if the audit head moved since it was built."""
        head = audit_head(session)
        entry = self._entries.get(environment_key)
        if entry is not None and entry.version >= head:
            return entry
        with self._lock:
            entry = self._entries.get(environment_key)
            if entry is None or entry.version < head:
                wire = build_snapshot(session, environment_key)
                entry = CachedSnapshot(wire["version"], wire, load_snapshot(wire))
                self._entries[environment_key] = entry
        return entry


def evaluate_flags(
    snapshot: Snapshot, context: Mapping[str, Any], flag_keys: Iterable[str] | None
) -> dict[str, Result]:
    """Evaluate the named flags (every flag in the snapshot when ``flag_keys`` is None)."""
    keys = snapshot.flag_keys if flag_keys is None else flag_keys
    return {key: evaluate(snapshot, key, context) for key in keys}
