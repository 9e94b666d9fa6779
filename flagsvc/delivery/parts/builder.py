"""``SnapshotBuilder``: each environment's snapshot, re-reading only what changed.

The parts (``sections``) are read like a full build (READ COMMITTED, statement by
statement): a change committing mid-build may show in part of them, labelled with the
older head; its event is after that head, so the next build re-reads what it touched. A
full build is done instead when the parts are missing, when the events are many
(``MAX_EVENTS``), when an event is of a kind ``events`` does not place, and every
``full_every`` seconds at the latest, so that a row changed without an audit event (by
hand in SQL) is served within that time. That periodic build keeps the member lists whose
cohort's kept count still agrees (a million members took seconds to re-read); every list
is read whole every ``members_every`` seconds.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.delivery.parts import journal
from flagsvc.delivery.parts.cohort import CohortPart
from flagsvc.delivery.parts.events import MAX_EVENTS
from flagsvc.delivery.parts.events import SINCE
from flagsvc.delivery.parts.events import Dirty
from flagsvc.delivery.parts.events import touched
from flagsvc.delivery.parts.sections import EnvironmentParts
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
from flagsvc.storage.models import Cohort

FULL_EVERY_SECONDS = 600.0
"""A full build at least this often (on a change): what bounds an unaudited edit."""

MEMBERS_EVERY_SECONDS = 3600.0
"""Every member list read whole at least this often (on a change). Between, a periodic
full build keeps the member list of a cohort whose kept ``member_count`` still says how
many members it holds: re-reading a 1,000,000-member cohort took seconds."""


class SnapshotBuilder:
    """Builds each environment's snapshot from parts kept since its last build.

    Not thread-safe per environment: the cache builds an environment under its lock.
    ``stats`` counts ``full`` and ``incremental`` builds, builds that re-read
    ``nothing``, the ``flags`` and ``cohorts`` re-read, the ``members`` applied from
    events, and the member lists a periodic full build ``kept`` (tests and benchmarks).
    """

    def __init__(
        self,
        full_every: float = FULL_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        members_every: float = MEMBERS_EVERY_SECONDS,
    ) -> None:
        self.full_every = full_every
        self.members_every = members_every
        self._clock = clock
        self._parts: dict[str, EnvironmentParts] = {}
        self.stats: Counter[str] = Counter()

    def build(
        self, session: Session, environment: str, previous: EncodedSnapshot | None
    ) -> tuple[EncodedSnapshot, dict[str, Any]]:
        """The environment's snapshot at the audit head now, encoded (reusing
        ``previous`` when the content is the same), and its wire."""
        parts = self._parts.get(environment)
        if parts is None or self._clock() - parts.members_at >= self.members_every:
            head = audit_head(session)
            parts = self._full(session, environment, head)
        else:
            head, events = self._since(session, parts.head)
            if head != parts.head:
                parts = self._advance(session, parts, head, events)
            else:
                self.stats["nothing"] += 1
            if self._clock() - parts.full_at >= self.full_every:
                parts = self._full(session, environment, head, parts)
        pieces, digest = parts.content()
        encoded = encode_content(environment, head, pieces, previous, digest)
        return encoded, {**parts.wire(), "version": encoded.version}

    def forget(self, environment: str) -> None:
        """Drop the parts: the next build is a full one."""
        self._parts.pop(environment, None)

    def _full(
        self,
        session: Session,
        environment: str,
        head: int,
        held: EnvironmentParts | None = None,
    ) -> EnvironmentParts:
        """Every part read anew, but the member lists of ``held`` (parts already brought
        to ``head``) whose cohort's kept count agrees: a change committed since ``head``
        is after it, so the next build applies it whatever this one kept."""
        environment_id = environment_row(session, environment)
        now = self._clock()
        parts = EnvironmentParts(
            environment, environment_id, head, now, now if held is None else held.members_at
        )
        for key, wire in read_flags(session, environment_id).items():
            parts.put_flag(key, wire)
        used = used_cohorts(live_states(environment_id))
        kept = _still_counted(session, used, held.cohort_parts) if held is not None else {}
        for key, part in kept.items():
            parts.put_cohort(key, part)
        for key, wire in read_cohorts(session, _others(used, kept)).items():
            parts.put_cohort(key, CohortPart.of(wire))
        parts.named.clear()
        self._parts[environment] = parts
        self.stats["full"] += 1
        self.stats["kept"] += len(kept)
        return parts

    def _advance(
        self, session: Session, parts: EnvironmentParts, head: int, events: Sequence[Any]
    ) -> EnvironmentParts:
        if len(events) > MAX_EVENTS or head < parts.head:  # many changes, or a reset database
            return self._full(session, parts.environment, head)
        dirty = touched(events, parts.environment)
        if dirty.everything:
            return self._full(session, parts.environment, head)
        sizes = {key: len(part.wire["members"]) for key, part in parts.cohort_parts.items()}
        dirty = journal.resolved(session, dirty, sizes)
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
        """The audit head now and the events after ``since`` (``events.SINCE``)."""
        rows = session.connection().execute(SINCE, {"since": since}).all()
        return int(rows[0].head), [row for row in rows if row.entity_type is not None]

    def _refresh_cohorts(self, session: Session, parts: EnvironmentParts, dirty: Dirty) -> None:
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
                    parts.put_cohort(key, CohortPart.of(fresh[key]))
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
                applied = journal.named(changes)
                changed = held[key].changed(applied)
                self.stats["members"] += sum(len(keys) for _, keys in applied)
                if changed is not None:
                    parts.put_cohort(key, changed)


def _still_counted(
    session: Session, used: Any, held: Mapping[str, CohortPart]
) -> dict[str, CohortPart]:
    """The held parts of used cohorts whose kept member count is their list's length,
    under their rows read now (rules, opt-in)."""
    if not held:
        return {}
    rows = session.execute(
        select(Cohort.key, Cohort.rules, Cohort.opt_in, Cohort.member_count).where(
            Cohort.id.in_(used), Cohort.key.in_(list(held))
        )
    )
    return {
        row.key: held[row.key].with_row({"key": row.key, "rules": row.rules, "opt_in": row.opt_in})
        for row in rows
        if row.member_count == len(held[row.key].wire["members"])
    }


def _others(used: Any, kept: Mapping[str, CohortPart]) -> Any:
    """The ids of the used cohorts not kept (a subquery)."""
    if not kept:
        return used
    return (
        select(Cohort.id)
        .where(Cohort.id.in_(used), Cohort.key.not_in(list(kept)))
        .scalar_subquery()
    )
