"""Serve snapshots and server-side evaluation from a cache that is built once per change.

``SnapshotCache`` keeps, per environment, the snapshot serialised once (the bytes
``GET /sdk/v1/snapshot`` sends) and compiled for the engine (what ``evaluate`` runs).
A request learns whether the audit head moved from the process's ``HeadTracker``
(own commits and broker messages, confirmed by the database every few seconds: no
query per request); a stream woken by the broker trusts the broker's version and
costs nothing unless that version is new. A miss rebuilds under a per-environment lock, so a burst
of requests or 1,000 streams waking together build once. With Redis, the encoded
snapshot is shared through ``RedisSnapshotStore``: one instance builds, the others
load its bytes; the builder shares the patch step to each version it builds there too,
before the version itself, so every instance answers ``?since=`` patches.
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from flagsvc_sdk.engine import SPEC_VERSION
from flagsvc_sdk.engine import EngineError
from flagsvc_sdk.engine import Result
from flagsvc_sdk.engine import Snapshot
from flagsvc_sdk.engine import evaluate
from flagsvc_sdk.engine import load_snapshot
from sqlalchemy.orm import Session

from flagsvc.delivery.direct import DirectSinks
from flagsvc.delivery.heads import HeadTracker
from flagsvc.delivery.parts import SnapshotBuilder
from flagsvc.delivery.patches import PatchHistory
from flagsvc.delivery.patches import Step
from flagsvc.delivery.patches import Wire
from flagsvc.delivery.patches import patch_answer
from flagsvc.delivery.patches import step_of
from flagsvc.delivery.snapshots import EncodedSnapshot
from flagsvc.delivery.snapshots import audit_head
from flagsvc.delivery.store import RedisSnapshotStore
from flagsvc.observability import metrics
from flagsvc.storage.db import UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)

GZIP_LEVEL = 6
"""zlib's default: 74 KB of snapshot JSON to about 8 KB in about a millisecond, once."""
GZIP_FAST_FROM = 1024 * 1024
"""Bodies of this size and more are compressed at level 1: a 1,000,000-member cohort's
14 MB take 65 ms instead of 880 ms at level 6 (for 5 % more bytes), and the one worker
that compresses answers nothing else meanwhile."""

MAX_SHARED_STEP = 64 * 1024
"""Steps larger than this are kept by the process only, not shared through Redis."""

CLAIM_WAIT_SECONDS = 0.25
"""How long to wait for another instance's claimed build before building it ourselves.

A build takes milliseconds to a few hundred (200 flags on a loaded machine), so a
claimant usually delivers well within it; a claimant that died (killed mid-build,
its Redis connection gone) no longer stalls this instance's streams and polls for the
claim's 10 s expiry (it was 5 s of waiting): after 0.25 s we build, at worst twice.
"""

SessionFactory = Callable[[], AbstractContextManager[Session]]
"""Opens a read session (``Database.read``); opened only when the database is needed."""


@dataclass(frozen=True, slots=True)
class CachedSnapshot:
    """One environment's snapshot: encoded as served and compiled for the engine.

    ``checked_for`` is a broker version the database turned out not to have (a
    message from a reset database or a stray publisher): remembering it stops every
    stream woken by it from rebuilding again.
    """

    encoded: EncodedSnapshot
    source: dict[str, Any] | Snapshot
    """The engine's form, or the wire it is compiled from on first use (``compiled``)."""
    checked_for: int = -1
    compressed: dict[str, bytes] = field(default_factory=dict, compare=False)
    """Content-coding -> body, filled on first request and kept while the content is."""
    _engine: list[Snapshot] = field(default_factory=list, compare=False)
    wire: Wire | None = field(default=None, compare=False, repr=False)
    """The content as a wire document (its ``version`` may be the build's head): what
    the next version is diffed against for patches (``delivery.patches``)."""

    @property
    def compiled(self) -> Snapshot:
        """The snapshot compiled for the engine (``POST /sdk/v1/evaluate``).

        Compiled on first use, not at build: serving and announcing a snapshot need
        only its bytes, and compiling 5,000 flags takes longer than building them.
        Two requests racing here may both compile once.
        """
        if isinstance(self.source, Snapshot):
            return self.source
        if not self._engine:
            self._engine.append(load_snapshot(self.source))
        return self._engine[0]

    @property
    def version(self) -> int:
        """The content version (what ETags and change events carry)."""
        return self.encoded.version

    @property
    def environment(self) -> str:
        """The environment's key."""
        return self.encoded.environment

    def covers(self, head: int) -> bool:
        """Current for audit head ``head``."""
        return self.encoded.head >= head or self.checked_for == head

    def gzipped(self) -> bytes:
        """The body gzip-compressed, once per version (not per request).

        ``mtime=0``: the same version always compresses to the same bytes, whichever
        process or request did it. Two requests racing here may both compress once.
        """
        body = self.compressed.get("gzip")
        if body is None:
            plain = self.encoded.body
            level = GZIP_LEVEL if len(plain) < GZIP_FAST_FROM else 1
            body = self.compressed["gzip"] = gzip.compress(plain, compresslevel=level, mtime=0)
        return body


class SnapshotCache:
    """Per-process cache of each environment's newest snapshot, optionally shared by Redis."""

    def __init__(
        self,
        store: RedisSnapshotStore | None = None,
        wait_seconds: float = CLAIM_WAIT_SECONDS,
        heads: HeadTracker | None = None,
    ) -> None:
        self._entries: dict[str, CachedSnapshot] = {}
        self.heads = heads
        """Where the audit head comes from without a query (None: read it per request)."""
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._store = store
        self._wait_seconds = wait_seconds
        self._watched: Counter[str] = Counter()
        self.builder = SnapshotBuilder()
        """Keeps each environment's parts between builds (``delivery.parts``)."""
        self.builds = 0
        """Snapshots this process built from the database (tests and benchmarks read it)."""
        self.patches = PatchHistory()
        """The steps between the versions this process held (``delivery.patches``)."""
        self._shared: dict[str, tuple[tuple[int, str], PatchHistory]] = {}
        """Per environment: the shared steps read from Redis, for the version served."""
        self.sinks = DirectSinks()
        """Open streams' sockets, written in one pass per change (``delivery.direct``)."""

    def watch(self, environment_key: str, delta: int) -> None:
        """Count an open stream on (``+1``) or off (``-1``) an environment."""
        with self._guard:
            self._watched[environment_key] += delta
            if self._watched[environment_key] <= 0:
                del self._watched[environment_key]

    def prepare(self, sessions: SessionFactory, version: int) -> None:
        """Bring every environment with open streams up to ``version`` (the broker's hook).

        Runs once per version on the broker's announcer thread, before the streams
        wake, so they find the snapshot built instead of queueing to build it; then
        writes the change event to the streams that can take it at once
        (``delivery.direct``): those that wake next find it sent.
        """
        with self._guard:
            environments = list(self._watched)
        for environment_key in environments:
            try:
                entry = self.get(sessions, environment_key, at_least=version)
            except Exception as error:  # the streams will try (and report) themselves
                log.warning("cannot prepare %s at %s: %s", environment_key, version, error)
                continue
            self.sinks.deliver(environment_key, entry.version)

    def get(
        self, sessions: SessionFactory, environment_key: str, at_least: int | None = None
    ) -> CachedSnapshot:
        """The environment's snapshot, current for the audit head.

        ``at_least`` None: the head ``heads`` knows (no query while it is confirmed),
        or without a tracker the database's (one indexed query). Otherwise trust it (a
        broker's version) and touch the database only if the cache is older.
        """
        if at_least is None:
            return self._current_or_cached(sessions, environment_key)
        return self._at_least(sessions, environment_key, at_least)

    def ready(self, environment_key: str) -> CachedSnapshot | None:
        """The environment's snapshot if it can be served with no work at all: the head
        is confirmed (no read due) and the cached snapshot covers it. Else None: the
        caller takes the full path (``get``). The SDK fast path's question."""
        if self.heads is None:
            return None
        head = self.heads.known()
        entry = self._entries.get(environment_key)
        if head is None or entry is None or not entry.covers(head):
            return None
        return entry

    def _at_least(
        self, sessions: SessionFactory, environment_key: str, at_least: int
    ) -> CachedSnapshot:
        entry = self._entries.get(environment_key)
        if entry is not None and entry.covers(at_least):
            return entry
        with self._lock(environment_key):  # 1,000 woken streams: one builds, the rest wait here
            entry = self._entries.get(environment_key)
            if entry is not None and entry.covers(at_least):
                return entry
            with sessions() as session:
                return self._refresh(session, environment_key, at_least)

    def _current_or_cached(self, sessions: SessionFactory, environment_key: str) -> CachedSnapshot:
        """Current for the audit head; while the database is unreachable, the last one built.

        Serving the newest snapshot this process knows (stale-if-error) keeps SDKs
        that start or poll during an outage answering with real flags, not defaults.
        """
        try:
            if self.heads is not None:
                return self._at_least(sessions, environment_key, self.heads.current())
            with sessions() as session:
                return self._current(session, environment_key, audit_head(session))
        except UNAVAILABLE_ERRORS as error:
            entry = self._entries.get(environment_key)
            if entry is None:
                raise
            log.warning("database unreachable; serving %s from cache: %s", environment_key, error)
            return entry

    def _current(self, session: Session, environment_key: str, needed: int) -> CachedSnapshot:
        entry = self._entries.get(environment_key)
        if entry is not None and entry.covers(needed):
            return entry
        with self._lock(environment_key):
            return self._refresh(session, environment_key, needed)

    def _lock(self, environment_key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(environment_key, threading.Lock())

    def _refresh(self, session: Session, environment_key: str, needed: int) -> CachedSnapshot:
        """Under the environment's lock: reuse, load the shared snapshot, or build."""
        local = self._entries.get(environment_key)
        if local is not None and local.covers(needed):
            return local  # another thread built it while we waited for the lock
        shared = self._from_store(environment_key, needed, held=local is not None)
        if shared is not None and shared.head >= needed:
            compiled = self._compiled(shared, local, None)
            if compiled is not None:
                return self._install(shared, compiled, needed)
            shared = None  # unreadable: neither serve it nor reuse its body
        previous = _newest(local.encoded if local else None, shared)
        encoded, wire = self._build(session, environment_key, previous)
        entry = self._install(encoded, self._compiled(encoded, local, wire), needed, built=True)
        if self._store is not None:  # after its step is shared: whoever loads it finds that
            self._store.put(encoded)
        return entry

    def patch_since(self, entry: CachedSnapshot, since: int, base: str | None) -> bytes | None:
        """The patch answer from ``since`` (content hash ``base``, when given) to
        ``entry``, or None when this process cannot say it (the full snapshot then)."""
        current = (entry.version, entry.encoded.content_hash)
        if since == entry.version:
            steps: list[Step] = []
            if base is not None and base != entry.encoded.content_hash:
                return None
        else:
            steps = self.patches.steps_since(entry.environment, since, base)
            if not steps or (steps[-1].to_version, steps[-1].to_hash) != current:
                steps = self._shared_steps(entry).steps_since(entry.environment, since, base)
            if not steps or (steps[-1].to_version, steps[-1].to_hash) != current:
                return None
        spec = SPEC_VERSION
        return patch_answer(spec, entry.environment, since, entry.version, steps)

    def _shared_steps(self, entry: CachedSnapshot) -> PatchHistory:
        """The steps the builders shared in Redis, as a history: read once per version
        this process serves (the first ``?since=`` it cannot answer from its own), and
        only up to the newest contiguous chain. A builder shares a version's step
        before the version itself, so whoever holds a version finds the step to it."""
        if self._store is None:
            return PatchHistory()
        current = (entry.version, entry.encoded.content_hash)
        known = self._shared.get(entry.environment)
        if known is not None and known[0] == current:
            return known[1]
        history = PatchHistory()
        for step in self._store.steps(entry.environment):
            history.record(entry.environment, step)
        self._shared[entry.environment] = (current, history)
        return history

    def _from_store(self, environment_key: str, needed: int, held: bool) -> EncodedSnapshot | None:
        """The shared snapshot, maybe older than ``needed``: then we build it ourselves,
        unless another instance claimed that build first (we wait for its result).

        A process that ``held`` a version reads the shared one only if it is new enough
        (an older one's body is of no use to it); one that held none reads it whatever
        its head, to keep its version when the content is the same."""
        if self._store is None:
            return None
        shared = self._store.get(environment_key, at_least=needed if held else 0)
        if shared is not None and shared.head >= needed:
            return shared
        if self._store.claim_build(environment_key, needed):
            return shared
        return self._store.wait_for(environment_key, needed, self._wait_seconds) or shared

    def _build(
        self, session: Session, environment_key: str, previous: EncodedSnapshot | None
    ) -> tuple[EncodedSnapshot, dict[str, Any]]:
        with metrics.SNAPSHOT_BUILD_DURATION.time():
            encoded, wire = self.builder.build(session, environment_key, previous)
            self.builds += 1
        return encoded, wire

    def _compiled(
        self, encoded: EncodedSnapshot, local: CachedSnapshot | None, wire: dict[str, Any] | None
    ) -> tuple[dict[str, Any] | Snapshot, Wire | None] | None:
        """The engine's form (or a local wire to compile on first use) and the wire
        document: reused when unchanged; None if shared bytes do not load (checked now:
        they are not ours)."""
        if local is not None and (local.encoded.content_hash, local.version) == (
            encoded.content_hash,
            encoded.version,
        ):
            return local.source, local.wire
        if wire is not None:
            return {**wire, "version": encoded.version}, wire
        try:
            shared = json.loads(encoded.body)
            return load_snapshot(shared), shared
        except (ValueError, EngineError) as error:
            log.warning("ignoring a shared snapshot that does not load: %s", error)
            return None

    def _install(
        self,
        encoded: EncodedSnapshot,
        compiled: tuple[dict[str, Any] | Snapshot, Wire | None] | None,
        needed: int,
        built: bool = False,
    ) -> CachedSnapshot:
        assert compiled is not None  # a locally built wire always compiles
        source, wire = compiled
        local = self._entries.get(encoded.environment)
        compressed: dict[str, bytes] = {}
        same = (encoded.version, encoded.content_hash)
        if local is not None and (local.version, local.encoded.content_hash) == same:
            compressed = local.compressed  # same content, only the head moved
        elif local is not None:
            self._record_step(local, encoded, wire, share=built)
        checked_for = needed if encoded.head < needed else -1
        engine = local._engine if local is not None and local.source is source else []
        entry = CachedSnapshot(encoded, source, checked_for, compressed, engine, wire)
        self._entries[encoded.environment] = entry
        return entry

    def _record_step(
        self, local: CachedSnapshot, encoded: EncodedSnapshot, wire: Wire | None, share: bool
    ) -> None:
        """Keep the step from the version held to the new one (for ``?since=``); share
        it through Redis when this process built the new one (``share``) and it is small
        (a step that big is no cheaper than the snapshot)."""
        if local.wire is None or wire is None or encoded.version <= local.version:
            return
        try:
            step = step_of(
                {**local.wire, "version": local.version},
                local.encoded.content_hash,
                {**wire, "version": encoded.version},
                encoded.content_hash,
            )
        except (KeyError, TypeError, ValueError) as error:  # a malformed shared snapshot
            log.warning("no patch from %s to %s: %s", local.version, encoded.version, error)
            return
        self.patches.record(encoded.environment, step)
        if share and self._store is not None and len(step.body) <= MAX_SHARED_STEP:
            self._store.push_step(encoded.environment, step)


def _newest(*candidates: EncodedSnapshot | None) -> EncodedSnapshot | None:
    present = [c for c in candidates if c is not None]
    return max(present, key=lambda c: c.head) if present else None


def evaluate_flags(
    snapshot: Snapshot, context: Mapping[str, Any], flag_keys: Iterable[str] | None
) -> dict[str, Result]:
    """Evaluate the named flags (every flag in the snapshot when ``flag_keys`` is None)."""
    keys = snapshot.flag_keys if flag_keys is None else flag_keys
    return {key: evaluate(snapshot, key, context) for key in keys}
