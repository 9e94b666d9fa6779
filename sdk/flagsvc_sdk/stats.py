"""Counters describing what the client's background work did, for logs, tests and ops.

Written only by the SDK's own threads (and once at start); read by anyone. Plain ints
under the GIL: a reader may see a value a moment old, never a torn one.
"""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass

__all__ = ["Stats"]


@dataclass(slots=True)
class Stats:
    """What happened since the client started."""

    snapshots_loaded: int = 0
    """Snapshots installed (files at start, downloads)."""
    snapshots_rejected: int = 0
    """Corrupt, truncated or invalid snapshots refused; the last good one was kept."""
    fetches: int = 0
    """Snapshot requests sent (200 and 304 alike)."""
    fetch_failures: int = 0
    """Snapshot requests that failed (unreachable service, bad status)."""
    patches_applied: int = 0
    """Patch answers applied to the snapshot held instead of downloading it whole."""
    patches_refused: int = 0
    """Patch answers that did not apply (a version gap, a contradiction): each was
    followed by a full fetch."""
    stream_connects: int = 0
    """Streams that said hello."""
    stream_failures: int = 0
    """Stream connections that failed or died (including silence)."""
    metrics_sent: int = 0
    """Metrics batches the service accepted."""
    metrics_dropped: int = 0
    """Metrics batches dropped after a failed POST."""
    adopters_dropped: int = 0
    """Early-adopter keys left unreported: above ``MAX_ADOPTERS`` for one flag in one batch."""

    def as_dict(self) -> dict[str, int]:
        """A copy of the counters, for logs and tests."""
        return asdict(self)
