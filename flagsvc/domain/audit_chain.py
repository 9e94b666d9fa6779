"""The audit hash chain: each event's hash covers its content and the previous hash.

Altering, inserting or removing any event breaks every later link, which
``flagsvc audit verify`` reports. Canonical JSON (sorted keys, no spaces) keeps the
hash the same on SQLite and PostgreSQL.

**Sealed with a key.** Anyone who can write the table can recompute plain SHA-256
hashes with this very module, so a plain chain only shows accidents. With audit keys
(``FLAGSVC_AUDIT_KEY``) each new event's hash is an HMAC-SHA256 under the current key
and the event names the key (``key_id``, a fingerprint, never the key): without the
key nobody can make a hash that verifies. The rules the verifier holds:

- an event without a ``key_id`` is plain SHA-256 and is accepted only *before* the
  first sealed event: the chain never goes back to plain (a rewrite without the key
  would have to). Events written before a key was set stay plain, and are protected
  all the same once a sealed event follows them: its HMAC covers their hashes.
- a sealed event verifies only with its key: after a key change, keep the old keys
  (after the current one) so the events they sealed still verify.
- with keys configured, a chain holding no sealed event at all is broken: it was
  rewritten from the start, or nothing was written since the key was set
  (``flagsvc init`` seals the chain with an ``audit.sealed`` event when the key is new).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64
_KEY_ID_MESSAGE = b"flagsvc audit key id"


def canonical_json(value: Any) -> str:
    """Serialise ``value`` the one way the chain hashes it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(prev_hash: str, content: Mapping[str, Any], key: bytes | None = None) -> str:
    """Hash one event's content chained to the hash of the event before it.

    Plain SHA-256 without ``key``; HMAC-SHA256 under ``key`` with it.
    """
    message = prev_hash.encode("ascii") + canonical_json(content).encode("utf-8")
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """The fingerprint an event records for the key that sealed it (reveals nothing of it)."""
    return hmac.new(key, _KEY_ID_MESSAGE, hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class AuditKeys:
    """The audit keys: the first seals new events, every one verifies the events it sealed."""

    keys: tuple[bytes, ...] = ()

    @classmethod
    def from_secrets(cls, secrets: Sequence[str]) -> AuditKeys:
        """Keys as configured (text); the first is the current one."""
        return cls(tuple(secret.encode("utf-8") for secret in secrets))

    @property
    def current(self) -> bytes | None:
        """The key new events are sealed with (None: plain SHA-256)."""
        return self.keys[0] if self.keys else None

    @property
    def current_id(self) -> str | None:
        """``key_id`` of the current key."""
        return key_id(self.keys[0]) if self.keys else None

    def by_id(self) -> dict[str, bytes]:
        """Every configured key by its fingerprint."""
        return {key_id(key): key for key in self.keys}


NO_KEYS = AuditKeys()
"""No audit key configured: plain SHA-256."""


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    """The stored form of an event as the verifier reads it."""

    seq: int
    prev_hash: str
    hash: str
    content: Mapping[str, Any]
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChainPoint:
    """A verified place in the chain to continue from: ``seq``, its hash, sealed or not."""

    seq: int = 0
    hash: str = GENESIS_HASH
    sealed: bool = False


START = ChainPoint()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of walking the chain: how far it holds and where it first breaks.

    ``events_checked`` counts the events this walk recomputed (from ``verified_from``);
    ``verified_seq`` is the newest event known good; ``complete`` is False when the walk
    stopped at its limit before the newest event.
    """

    valid: bool
    events_checked: int
    first_broken_seq: int | None = None
    reason: str | None = None
    verified_from: int = 0
    verified_seq: int = 0
    complete: bool = True


def verify(
    events: Iterable[ChainedEvent],
    keys: AuditKeys = NO_KEYS,
    start: ChainPoint = START,
    limit: int | None = None,
) -> ChainReport:
    """Walk ``events`` (in sequence order, the first one after ``start``); name the first
    broken link. Stops after ``limit`` events (``complete`` False) when one is given."""
    point, checked, by_id = start, 0, keys.by_id()
    for event in events:
        if limit is not None and checked >= limit:
            return ChainReport(True, checked, None, None, start.seq, point.seq, complete=False)
        problem = _link_problem(event, point, by_id)
        if problem:
            return ChainReport(False, checked, event.seq, problem, start.seq, point.seq)
        point = ChainPoint(event.seq, event.hash, event.key_id is not None)
        checked += 1
    if keys.keys and not point.sealed and point.seq > 0:
        return ChainReport(False, checked, 1, _NOT_SEALED, start.seq, point.seq)
    return ChainReport(True, checked, None, None, start.seq, point.seq)


_NOT_SEALED = (
    "no event is sealed with the audit key, so the whole log could have been rewritten "
    "(if the key was only just set: run 'flagsvc init', which seals the chain)"
)


def _link_problem(event: ChainedEvent, point: ChainPoint, keys: Mapping[str, bytes]) -> str | None:
    if event.seq != point.seq + 1:
        return f"sequence jumps from {point.seq} to {event.seq}: events were removed"
    if event.prev_hash != point.hash:
        return "prev_hash does not match the previous event's hash"
    if event.key_id is None:
        if point.sealed:
            return "not sealed with the audit key after the chain was: the event was rewritten"
        key = None
    else:
        key = keys.get(event.key_id)
        if key is None:
            return (
                f"sealed with a key this verifier does not have (key id {event.key_id}): "
                "list every key in use in FLAGSVC_AUDIT_KEY, the current one first"
            )
    if not hmac.compare_digest(event_hash(event.prev_hash, event.content, key), event.hash):
        return "content does not match its hash: the event was altered"
    return None
