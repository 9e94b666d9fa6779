"""Incremental snapshot builds: re-read only the flags and cohorts a change touched.

A full build reads every live flag, cohort and member of the environment and
serialises them all: 60-250 ms for 200 flags and 200 cohorts on this machine, seconds
for 5,000. Yet a change touches one flag or one cohort. ``SnapshotBuilder`` keeps, per
environment, each flag's and each cohort's wire and its serialised text, and the audit
head they were read at. The audit log says what changed since: every change that can
alter a snapshot records an event naming its flag (and environment, for a state) or its
cohort. So a build reads the events since the parts' head, re-reads just the flags and
cohorts they name, and joins the kept texts into the body, byte for byte what
``encode_snapshot`` writes for a full build. A change that names nothing in this
environment (another environment's state, an objective, a token) re-reads nothing.

Members are not re-read: a member event names the members it added or removed (one
for an opt-in, up to the audit's sample of 20 for a bulk change, whose count says
whether that is all), and the build applies them to the cohort's sorted list and to
its text, kept in chunks of ``CHUNK`` members so that only the chunk a member lands in
is serialised again. Applying them in ``seq`` order gives each member's state at the
new head whatever the parts held before (an add or a removal *sets* membership), so a
member change that a whole read had already seen is harmless. A bulk change that
names more than its sample, a new or deleted cohort, and a cohort a flag starts
using are read whole; a rules or opt-in edit re-reads the cohort's row only.

The parts are read like a full build (READ COMMITTED, statement by statement): a change
committing mid-build may show in part of them, labelled with the older head; its event
is after that head, so the next build re-reads what it touched. A full build is done
instead when the parts are missing, when the events are many (``MAX_EVENTS``), when an
event is of a kind this module does not know (a new entity: rebuild rather than guess),
and every ``full_every`` seconds at the latest, so that a row changed without an audit
event (by hand in SQL) is served within that time, as before.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from flagsvc_sdk.engine import SPEC_VERSION
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.delivery.snapshots import EncodedSnapshot
from flagsvc.delivery.snapshots import audit_head
from flagsvc.delivery.snapshots import cohort_ids
from flagsvc.delivery.snapshots import encode_content
from flagsvc.delivery.snapshots import environment_row
from flagsvc.delivery.snapshots import live_states
from flagsvc.delivery.snapshots import read_cohort_rows
from flagsvc.delivery.snapshots import read_cohorts
from flagsvc.delivery.snapshots import read_flags
from flagsvc.delivery.snapshots import used_cohorts
from flagsvc.storage.models import AuditEvent

MAX_EVENTS = 500
"""More events than this since the last build: a full build is as cheap and simpler."""

FULL_EVERY_SECONDS = 600.0
"""A full build at least this often (on a change): what bounds an unaudited edit."""

UNSEEN = frozenset(
    {
        "objective",
        "key_result",
        "value_stream",
        "token",
        "sdk_key",
        "audit",
        "environment",
        "webhook",
    }
)
"""Event entities that never appear in a snapshot. (A new environment is built in full
on its first request; its event changes no other environment.)"""


MEMBER_ACTIONS = {
    "cohort.members_added": True,
    "cohort.member_enrolled": True,
    "cohort.members_removed": False,
    "cohort.member_left": False,
}
"""Cohort events that name the members they added (True) or removed (False)."""

ROW_ACTIONS = frozenset({"cohort.updated"})
"""Cohort events that change the cohort's row (rules, opt-in), never its members."""

CHUNK = 1024
"""Members per chunk of a cohort's serialised text (a chunk splits at twice this): a
member added or removed re-serialises one chunk, not the cohort."""


FEW = 64
"""Members changed at most, the cohort's flat list is copied and edited in place (each
edit moves up to the whole list: 8 MB for 1,000,000 members); more, it is rebuilt."""


def _text(value: Any) -> str:
    """``value`` as ``encode_snapshot`` serialises it (compact, keys sorted)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _chunk_text(chunk: list[str]) -> bytes:
    """A chunk's members as they appear inside the JSON list (no brackets)."""
    return _text(chunk)[1:-1].encode()


_serials = itertools.count(1)


class Members(list[str]):
    """A cohort's member list (code point order) as the incremental build made it.

    ``serial`` names this list; ``base`` the serial of the list it was made from by
    adding ``added`` and removing ``removed`` (0: read whole). The patch step between
    the two versions is then known without comparing a million members
    (``delivery.patches``).
    """

    __slots__ = ("added", "base", "removed", "serial")

    def __init__(
        self,
        members: Iterable[str] = (),
        base: int = 0,
        added: Sequence[str] = (),
        removed: Sequence[str] = (),
    ) -> None:
        super().__init__(members)
        self.serial = next(_serials)
        self.base = base
        self.added = added
        self.removed = removed


@dataclass(frozen=True, slots=True)
class _Cohort:
    """One cohort's part: its wire and its serialised text, the members in chunks.

    Immutable: a change makes a new part (sharing the chunks it did not touch), since
    the wire of the version before is still served and diffed.
    """

    wire: dict[str, Any]
    prefix: bytes
    """``"<key>":{...,"members":[``: everything before the members."""
    suffix: bytes
    """``],...}``: everything after them."""
    chunks: tuple[list[str], ...]
    texts: tuple[bytes, ...]

    @classmethod
    def of(cls, wire: dict[str, Any], members: Sequence[str] | None = None) -> _Cohort:
        """The part of ``wire`` (its members: ``members`` if given, else the wire's)."""
        listed = wire["members"] if members is None else members
        chunks = tuple(list(listed[i : i + CHUNK]) for i in range(0, len(listed), CHUNK))
        texts = tuple(_chunk_text(chunk) for chunk in chunks)
        if not isinstance(listed, Members):
            listed = Members(listed)
        return cls._made({**wire, "members": listed}, chunks, texts)

    @classmethod
    def _made(
        cls, wire: dict[str, Any], chunks: tuple[list[str], ...], texts: tuple[bytes, ...]
    ) -> _Cohort:
        empty = _text({**wire, "members": []})
        # the first '"members":[]' is the key's (the strings before it are escaped)
        cut = empty.index('"members":[]') + len('"members":[')
        key = _text(wire["key"])
        prefix, suffix = f"{key}:{empty[:cut]}".encode(), empty[cut:].encode()
        return cls(wire, prefix, suffix, chunks, texts)

    def with_row(self, row: dict[str, Any]) -> _Cohort:
        """The same members under a re-read row (rules, opt-in)."""
        return self._made({**row, "members": self.wire["members"]}, self.chunks, self.texts)

    def pieces(self) -> list[bytes]:
        """The part's serialised text, in pieces to join."""
        if len(self.texts) <= 1:
            return [self.prefix + b"".join(self.texts) + self.suffix]
        pieces = [self.prefix]
        for index, text in enumerate(self.texts):
            if index:
                pieces.append(b",")
            pieces.append(text)
        pieces.append(self.suffix)
        return pieces

    def changed(self, changes: Sequence[tuple[bool, Sequence[str]]]) -> _Cohort | None:
        """The part after ``changes`` (in order: added (True) or removed (False) user
        keys), or None if they changed nothing (an add of a member, a removal of a
        stranger: each sets the key's membership, so replaying one is harmless)."""
        chunks = list(self.chunks)
        firsts = [chunk[0] for chunk in chunks]
        was: dict[str, bool] = {}
        for adding, keys in changes:
            for key in keys:
                was.setdefault(key, _holds(chunks, firsts, key))
                _set(chunks, firsts, key, adding)
        members = self.wire["members"]
        now = {key for key in was if _holds(chunks, firsts, key)}
        added = sorted(key for key in now if not was[key])
        removed = sorted(key for key in was if was[key] and key not in now)
        if not added and not removed:
            return None
        kept = {id(chunk): text for chunk, text in zip(self.chunks, self.texts, strict=True)}
        texts = tuple(kept.get(id(chunk)) or _chunk_text(chunk) for chunk in chunks)
        base = members.serial if isinstance(members, Members) else 0
        if len(added) + len(removed) <= FEW:  # a copy and a few moves, not a rebuild
            listed = Members(members, base, added, removed)
            for key in removed:
                del listed[bisect.bisect_left(listed, key)]
            for key in added:
                bisect.insort(listed, key)
        else:
            listed = Members(itertools.chain.from_iterable(chunks), base, added, removed)
        return self._made({**self.wire, "members": listed}, tuple(chunks), texts)


def _set(chunks: list[list[str]], firsts: list[str], key: str, adding: bool) -> None:
    """Add ``key`` to (or remove it from) the chunk where code point order puts it: a new
    chunk list (the old one is still the previous version's), split when too long,
    dropped when empty."""
    index = max(bisect.bisect_right(firsts, key) - 1, 0)
    chunk = chunks[index] if chunks else []
    at = bisect.bisect_left(chunk, key)
    if (at < len(chunk) and chunk[at] == key) == adding:
        return
    fresh = [*chunk[:at], key, *chunk[at:]] if adding else [*chunk[:at], *chunk[at + 1 :]]
    if not chunks:
        chunks.append(fresh)
        firsts.append(key)
    elif not fresh:
        del chunks[index], firsts[index]
    elif len(fresh) > 2 * CHUNK:
        half = len(fresh) // 2
        chunks[index : index + 1] = [fresh[:half], fresh[half:]]
        firsts[index : index + 1] = [fresh[0], fresh[half]]
    else:
        chunks[index], firsts[index] = fresh, fresh[0]


def _holds(chunks: list[list[str]], firsts: list[str], key: str) -> bool:
    if not chunks:
        return False
    chunk = chunks[max(bisect.bisect_right(firsts, key) - 1, 0)]
    at = bisect.bisect_left(chunk, key)
    return at < len(chunk) and chunk[at] == key


@dataclass(slots=True)
class _Section:
    """One keyed section of the snapshot (``flags`` or ``cohorts``): wire and text per key.

    The key order and the section's pieces are kept until a part changes (the order
    until a key comes or goes), so a build that changed one flag re-serialises only
    that flag.
    """

    wire: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: dict[str, list[bytes]] = field(default_factory=dict)
    """Key -> ``"<key>":<wire>`` in pieces, ready to join."""
    changes: int = 0
    _order: list[str] | None = None
    _pieces: list[bytes] | None = None

    def put(self, key: str, wire: dict[str, Any], pieces: list[bytes] | None = None) -> None:
        if key not in self.text:
            self._order = None
        self.wire[key] = wire
        self.text[key] = pieces or [f"{_text(key)}:{_text(wire)}".encode()]
        self._changed()

    def drop(self, key: str) -> None:
        if key in self.text:
            self._order = None
            self._changed()
        self.wire.pop(key, None)
        self.text.pop(key, None)

    def _changed(self) -> None:
        self._pieces = None
        self.changes += 1

    def pieces(self) -> list[bytes]:
        """The section's text in pieces: the small parts joined together (one piece), a
        many-chunk cohort's chunks each their own piece (never copied here)."""
        if self._pieces is None:
            if self._order is None:
                self._order = sorted(self.text)
            pieces: list[bytes] = []
            run = [b"{"]
            for index, key in enumerate(self._order):
                if index:
                    run.append(b",")
                part = self.text[key]
                if len(part) == 1:
                    run.extend(part)
                    continue
                pieces.append(b"".join(run))
                pieces.extend(part)
                run = []
            run.append(b"}")
            pieces.append(b"".join(run))
            self._pieces = pieces
        return self._pieces


@dataclass(slots=True)
class _Parts:
    """An environment's snapshot as parts, current for audit head ``head``."""

    environment: str
    environment_id: int
    head: int
    full_at: float
    flags: _Section = field(default_factory=_Section)
    cohorts: _Section = field(default_factory=_Section)
    cohort_parts: dict[str, _Cohort] = field(default_factory=dict)
    uses: Counter[str] = field(default_factory=Counter)
    """Cohort key -> how many of the live flags name it (a cohort is sent while used)."""

    named: set[str] = field(default_factory=set)
    """Cohorts whose use changed since the last build: to fetch or to drop."""

    def put_flag(self, key: str, wire: dict[str, Any]) -> None:
        self.drop_flag(key)
        self.flags.put(key, wire)
        self.uses.update(wire["cohorts"])
        self.named.update(wire["cohorts"])

    def drop_flag(self, key: str) -> None:
        old = self.flags.wire.get(key)
        if old is not None:
            for cohort in old["cohorts"]:
                self.uses[cohort] -= 1
                if self.uses[cohort] <= 0:
                    del self.uses[cohort]  # no flag names it any more
            self.named.update(old["cohorts"])
            self.flags.drop(key)

    def put_cohort(self, key: str, part: _Cohort) -> None:
        self.cohort_parts[key] = part
        self.cohorts.put(key, part.wire, part.pieces())

    def drop_cohort(self, key: str) -> None:
        self.cohort_parts.pop(key, None)
        self.cohorts.drop(key)

    _content: tuple[tuple[int, int], list[bytes], str] | None = None

    def content(self) -> tuple[list[bytes], str]:
        """The sorted-keys JSON of everything but ``version``, as a full build's, in
        pieces (the first is ``{``), and its SHA-256; both kept until a part changes.
        The pieces are hashed one by one: only the body is ever joined."""
        changes = (self.flags.changes, self.cohorts.changes)
        if self._content is None or self._content[0] != changes:
            top = {"environment": self.environment, "spec_version": SPEC_VERSION}
            sections = {"flags": self.flags.pieces(), "cohorts": self.cohorts.pieces()}
            items = [(key, [_text(value).encode()]) for key, value in top.items()]
            items += list(sections.items())
            pieces = [b"{"]
            for index, (key, value) in enumerate(sorted(items)):
                pieces.append(b'%s"%s":' % (b"," if index else b"", key.encode()))
                pieces.extend(value)
            pieces.append(b"}")
            digest = hashlib.sha256()
            for piece in pieces:
                digest.update(piece)
            self._content = (changes, pieces, digest.hexdigest())
        return self._content[1], self._content[2]

    def wire(self) -> dict[str, Any]:
        """The wire snapshot (what ``build_snapshot`` returns), sharing the part dicts."""
        return {
            "spec_version": SPEC_VERSION,
            "environment": self.environment,
            "version": self.head,
            "flags": dict(self.flags.wire),
            "cohorts": dict(self.cohorts.wire),
        }


MemberChanges = tuple[tuple[bool, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class Dirty:
    """What the events since the parts' head touched in one environment.

    ``cohorts`` are re-read whole, ``rows`` without their members, ``members`` are
    applied from the events (in order). ``everything``: an event this module cannot
    place, or too many events.
    """

    flags: frozenset[str] = frozenset()
    cohorts: frozenset[str] = frozenset()
    rows: frozenset[str] = frozenset()
    members: Mapping[str, MemberChanges] = field(default_factory=dict)
    everything: bool = False


def _named_members(event: Any) -> tuple[bool, tuple[str, ...]] | None:
    """The members a member event added or removed, or None when it does not name them
    all (a bulk change names a sample of ``AUDIT_SAMPLE``; its count says if that is all)."""
    after = getattr(event, "after", None)
    if not isinstance(after, dict):
        return None
    adding = MEMBER_ACTIONS[event.action]
    if isinstance(after.get("user_key"), str):
        return adding, (after["user_key"],)
    sample = after.get("sample")
    if not isinstance(sample, list) or after.get("count") != len(sample):
        return None
    if all(isinstance(key, str) for key in sample):
        return adding, tuple(sample)
    return None


def touched(events: Iterable[Any], environment: str) -> Dirty:
    """Which of ``environment``'s flags and cohorts ``events`` (in ``seq`` order) may
    have changed, and how.

    A flag event counts when it is about the flag itself (no environment: its
    variations, archive) or about its state here; cohort events always (members,
    rules, opt-in are the same in every environment).
    """
    flags: set[str] = set()
    whole: set[str] = set()
    rows: set[str] = set()
    members: dict[str, list[tuple[bool, tuple[str, ...]]]] = {}
    for event in events:
        if event.entity_type == "cohort":
            key, action = event.entity_key, getattr(event, "action", None)
            named = _named_members(event) if action in MEMBER_ACTIONS else None
            if named is not None:
                members.setdefault(key, []).append(named)
            elif action in ROW_ACTIONS:
                rows.add(key)
            else:
                whole.add(key)
        elif event.flag_key is not None:
            if event.environment in (None, environment):
                flags.add(event.flag_key)
        elif event.entity_type not in UNSEEN:
            return Dirty(everything=True)
    return Dirty(
        frozenset(flags),
        frozenset(whole),
        frozenset(rows - whole),
        {key: tuple(changes) for key, changes in members.items() if key not in whole},
    )


class SnapshotBuilder:
    """Builds each environment's snapshot from parts kept since its last build.

    Not thread-safe per environment: the cache builds an environment under its lock.
    ``stats`` counts ``full`` and ``incremental`` builds, builds that re-read
    ``nothing``, and the ``flags`` and ``cohorts`` re-read (tests and benchmarks).
    """

    def __init__(
        self,
        full_every: float = FULL_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.full_every = full_every
        self._clock = clock
        self._parts: dict[str, _Parts] = {}
        self.stats: Counter[str] = Counter()

    def build(
        self, session: Session, environment: str, previous: EncodedSnapshot | None
    ) -> tuple[EncodedSnapshot, dict[str, Any]]:
        """The environment's snapshot at the audit head now, encoded (reusing
        ``previous`` when the content is the same), and its wire."""
        parts = self._parts.get(environment)
        if parts is None or self._clock() - parts.full_at >= self.full_every:
            head = audit_head(session)
            parts = self._full(session, environment, head)
        else:
            head, events = self._since(session, parts.head)
            if head != parts.head:
                parts = self._advance(session, parts, head, events)
            else:
                self.stats["nothing"] += 1
        pieces, digest = parts.content()
        encoded = encode_content(environment, head, pieces, previous, digest)
        return encoded, {**parts.wire(), "version": encoded.version}

    def forget(self, environment: str) -> None:
        """Drop the parts: the next build is a full one."""
        self._parts.pop(environment, None)

    def _full(self, session: Session, environment: str, head: int) -> _Parts:
        environment_id = environment_row(session, environment)
        parts = _Parts(environment, environment_id, head, self._clock())
        for key, wire in read_flags(session, environment_id).items():
            parts.put_flag(key, wire)
        for key, wire in read_cohorts(session, used_cohorts(live_states(environment_id))).items():
            parts.put_cohort(key, _Cohort.of(wire))
        parts.named.clear()
        self._parts[environment] = parts
        self.stats["full"] += 1
        return parts

    def _advance(self, session: Session, parts: _Parts, head: int, events: Sequence[Any]) -> _Parts:
        if len(events) > MAX_EVENTS or head < parts.head:  # many changes, or a reset database
            return self._full(session, parts.environment, head)
        dirty = touched(events, parts.environment)
        if dirty.everything:
            return self._full(session, parts.environment, head)
        if dirty.flags:
            fresh = read_flags(session, parts.environment_id, dirty.flags)
            for key in dirty.flags:
                if key in fresh:
                    parts.put_flag(key, fresh[key])
                else:
                    parts.drop_flag(key)  # retired, archived or gone
        self._refresh_cohorts(session, parts, dirty)
        self.stats["flags"] += len(dirty.flags)
        something = dirty.flags or dirty.cohorts or dirty.rows or dirty.members
        self.stats["incremental" if something else "nothing"] += 1
        parts.head = head
        return parts

    @staticmethod
    def _since(session: Session, since: int) -> tuple[int, Sequence[Any]]:
        """The audit head now and the events after ``since`` up to it, in ``seq`` order,
        in one round trip (at most ``MAX_EVENTS`` + 1 of them: more means a full build
        anyway); member events with their ``after``, which names the members."""
        rows = session.connection().execute(_SINCE, {"since": since}).all()
        return int(rows[0].head), [row for row in rows if row.entity_type is not None]

    def _refresh_cohorts(self, session: Session, parts: _Parts, dirty: Dirty) -> None:
        """Bring the used cohorts up to the events: drop unused ones, read whole those no
        part holds yet or an event changed wholesale, re-read the rows of those edited,
        apply the members the events name to the rest."""
        named, parts.named = parts.named, set()
        for key in named:
            if key not in parts.uses:
                parts.drop_cohort(key)
        held, used = parts.cohort_parts, parts.uses
        candidates = dirty.cohorts | dirty.rows | named | dirty.members.keys()
        whole = {
            key for key in candidates if key in used and (key in dirty.cohorts or key not in held)
        }
        if whole:
            fresh = read_cohorts(session, cohort_ids(whole))
            for key in whole:
                if key in fresh:
                    parts.put_cohort(key, _Cohort.of(fresh[key]))
                else:
                    parts.drop_cohort(key)
            self.stats["cohorts"] += len(whole)
        edited = {key for key in dirty.rows if key in used and key not in whole}
        if edited:
            rows = read_cohort_rows(session, edited)
            for key in edited:
                if key in rows:
                    parts.put_cohort(key, held[key].with_row(rows[key]))
                else:
                    parts.drop_cohort(key)
        for key, changes in dirty.members.items():
            if key in used and key not in whole and key in held:
                changed = held[key].changed(changes)
                self.stats["members"] += sum(len(keys) for _, keys in changes)
                if changed is not None:
                    parts.put_cohort(key, changed)


_HEAD = select(func.coalesce(func.max(AuditEvent.seq), 0).label("head")).subquery()
_SINCE = (
    select(
        _HEAD.c.head,
        AuditEvent.entity_type,
        AuditEvent.entity_key,
        AuditEvent.flag_key,
        AuditEvent.environment,
        AuditEvent.action,
        case((AuditEvent.action.in_(list(MEMBER_ACTIONS)), AuditEvent.after)).label("after"),
    )
    .select_from(_HEAD)
    .outerjoin(AuditEvent, (AuditEvent.seq > bindparam("since")) & (AuditEvent.seq <= _HEAD.c.head))
    .order_by(AuditEvent.seq)
    .limit(MAX_EVENTS + 1)
)
