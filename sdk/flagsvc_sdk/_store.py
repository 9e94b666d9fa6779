"""The compiled state the client reads, and snapshot files on disk.

:class:`Loaded` bundles everything one snapshot gives the hot paths (the snapshot, its
compiled plans, its shared answers), so the client swaps it with a single attribute
assignment and a reader never sees a new snapshot with old plans.

Files: ``bootstrap_path`` ships with the app, ``cache_path`` is the last snapshot the
service served; both use the wire JSON of ``GET /sdk/v1/snapshot``. The cache is written
to a temporary file in the same folder and renamed over the old one, so a crash mid-write
leaves the previous file whole (``os.replace`` is atomic).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from ._answers import Answers
from ._checks import Plan
from .engine import EngineError
from .engine import Snapshot
from .engine import load_snapshot
from .errors import FetchError

__all__ = [
    "Loaded",
    "compile_document",
    "parse_document",
    "parse_snapshot",
    "read_snapshot_file",
    "write_atomic",
]

log = logging.getLogger("flagsvc_sdk")


@dataclass(frozen=True, slots=True)
class Loaded:
    """One compiled snapshot with its plans; ``source`` is where it came from
    (``service``, ``cache`` or ``bootstrap``)."""

    snapshot: Snapshot
    plans: Mapping[str, Plan] = field(repr=False)
    answers: Answers = field(repr=False)
    source: str
    etag: str | None = None
    content_hash: str | None = None
    """The service's hash of this content (header ``Flagsvc-Content-Hash``); None for files."""

    @property
    def version(self) -> int:
        """The snapshot's version (the service's change counter)."""
        return self.snapshot.version

    @property
    def patch_base(self) -> tuple[int, str] | None:
        """``(version, content hash)`` to ask a patch from; None: only a full fetch will do.

        Only a snapshot the service sent with its hash qualifies: the service patches
        from content it knows the SDK holds, never from a file's.
        """
        if self.source != "service" or not self.content_hash:
            return None
        return self.version, self.content_hash


def parse_snapshot(raw: bytes, source: str) -> Snapshot:
    """Parse and compile snapshot JSON.

    :raise FetchError: if ``raw`` is not JSON or not a valid snapshot (truncated, corrupt,
        wrong ``spec_version``); the message says which.
    """
    return compile_document(parse_document(raw, source), source)


def parse_document(raw: bytes, source: str) -> dict[str, object]:
    """The JSON object in ``raw`` (a snapshot or a patch answer), not yet validated.

    :raise FetchError: if ``raw`` is not JSON or not an object.
    """
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise FetchError(f"{source}: rejected snapshot: {exc}") from exc
    if not isinstance(doc, dict):
        raise FetchError(f"{source}: rejected snapshot: not a JSON object")
    return doc


def compile_document(doc: Mapping[str, object], source: str) -> Snapshot:
    """Validate and compile a parsed snapshot document.

    :raise FetchError: if it is not a valid snapshot; the message says why.
    """
    try:
        return load_snapshot(doc)
    except (EngineError, RecursionError) as exc:
        raise FetchError(f"{source}: rejected snapshot: {exc}") from exc


def read_snapshot_file(path: Path, source: str, *, expected: bool) -> Snapshot | None:
    """Load a snapshot file; ``None`` if it is missing or unreadable (logged).

    ``expected``: the file should exist, so its absence is worth a warning (a bootstrap
    file shipped with the app, where a typo in the path would otherwise go unnoticed);
    a cache file is missing on every first start, quietly.

    :raise FetchError: if the file holds a corrupt or truncated snapshot.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if expected:
            log.warning("flagsvc: %s file %s does not exist; starting without it", source, path)
        return None
    except OSError as exc:
        log.warning("flagsvc: cannot read %s snapshot %s: %s", source, path, exc)
        return None
    return parse_snapshot(raw, f"{source} file {path}")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    :raise OSError: if the folder is not writable (the caller logs it).
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
