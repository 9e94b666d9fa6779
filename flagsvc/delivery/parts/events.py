"""What the audit events since a build say it must re-read, and the query for them.

Every change that can alter a snapshot records an event naming its flag (and
environment, for a state) or its cohort; member events name the members they added or
removed (a bulk event a sample: the rest are in the member journal). ``touched`` turns
the events into a ``Dirty``: what to re-read and what to apply. An event of a kind
placed nowhere here (a new entity) means a full build rather than a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import select

from flagsvc.services import member_journal
from flagsvc.storage.models import AuditEvent

MAX_EVENTS = 500
"""More events than this since the last build: a full build is as cheap and simpler."""

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


@dataclass(frozen=True, slots=True)
class Journalled:
    """A bulk member change whose keys are in the member journal under ``seq`` (its
    event names a sample only): ``journal.resolved`` reads them."""

    adding: bool
    seq: int
    count: int


Named = tuple[bool, tuple[str, ...]]
"""User keys added (True) or removed (False), all of them."""

MemberChanges = tuple[Named | Journalled, ...]


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


def _named_members(event: Any) -> Named | Journalled | None:
    """The members a member event added or removed: named by the event, or journalled
    when it names a sample (``AUDIT_SAMPLE``; its count says if that is all). None: the
    event says too little (the cohort is read whole)."""
    after = getattr(event, "after", None)
    if not isinstance(after, dict):
        return None
    adding = MEMBER_ACTIONS[event.action]
    if isinstance(after.get("user_key"), str):
        return adding, (after["user_key"],)
    sample, count = after.get("sample"), after.get("count")
    if not isinstance(sample, list) or not isinstance(count, int):
        return None
    if count != len(sample):
        seq = getattr(event, "seq", None)
        if isinstance(seq, int) and count <= member_journal.MAX_KEYS:
            return Journalled(adding, seq, count)
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
    members: dict[str, list[Named | Journalled]] = {}
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


_HEAD = select(func.coalesce(func.max(AuditEvent.seq), 0).label("head")).subquery()
SINCE = (
    select(
        _HEAD.c.head,
        AuditEvent.seq,
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
"""The audit head and the events after ``since`` up to it, in ``seq`` order, in one
round trip (at most ``MAX_EVENTS`` + 1 of them: more means a full build anyway); member
events with their ``after``, which names the members."""
