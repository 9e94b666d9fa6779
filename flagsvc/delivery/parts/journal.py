"""Bulk member changes resolved from the member journal (``services.member_journal``).

A bulk member event names a sample of its keys; the journal holds them all under the
event's ``seq``. Applying them costs per key what re-reading the cohort costs per
member, so a cohort whose journalled changes are more than ``WHOLE_SHARE`` of what it
holds is read whole instead, and so is one whose keys are not all in the journal any
more (an old event: the journal keeps the newest only) or never were (too many keys).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.delivery.parts.events import Dirty
from flagsvc.delivery.parts.events import Journalled
from flagsvc.delivery.parts.events import MemberChanges
from flagsvc.delivery.parts.events import Named
from flagsvc.storage.models import CohortMemberChange

WHOLE_SHARE = 0.25
"""Journalled keys beyond this share of a held cohort's members: read it whole."""


def resolved(session: Session, dirty: Dirty, held: Mapping[str, int]) -> Dirty:
    """``dirty`` with every journalled change replaced by its keys, in one statement;
    the cohorts that cannot be (``held``: member counts of the cohorts the parts hold)
    move to those read whole."""
    wanted: dict[str, list[Journalled]] = {}
    for key, changes in dirty.members.items():
        journalled = [change for change in changes if isinstance(change, Journalled)]
        if journalled:
            wanted[key] = journalled
    if not wanted:
        return dirty
    whole = {key for key, changes in wanted.items() if not _worth_it(changes, held.get(key))}
    seqs = {change.seq for key, changes in wanted.items() if key not in whole for change in changes}
    keys = _journal(session, seqs) if seqs else {}
    members: dict[str, MemberChanges] = {}
    for key, changes in dirty.members.items():
        applied = None if key in whole else _applied(changes, keys)
        if applied is None:
            whole.add(key)
        else:
            members[key] = applied
    return Dirty(dirty.flags, dirty.cohorts | whole, dirty.rows - whole, members)


def named(changes: MemberChanges) -> list[Named]:
    """The changes of a resolved ``Dirty``: every one names its keys."""
    found = [change for change in changes if not isinstance(change, Journalled)]
    if len(found) != len(changes):
        raise ValueError("journalled member changes left unresolved")
    return found


def _worth_it(changes: list[Journalled], size: int | None) -> bool:
    return size is not None and sum(change.count for change in changes) <= WHOLE_SHARE * size


def _applied(changes: MemberChanges, keys: Mapping[int, tuple[str, ...]]) -> MemberChanges | None:
    """The changes with their keys, or None if the journal lacks some of them."""
    named: list[Named] = []
    for change in changes:
        if not isinstance(change, Journalled):
            named.append(change)
            continue
        found = keys.get(change.seq, ())
        if len(found) != change.count:
            return None
        named.append((change.adding, found))
    return tuple(named)


def _journal(session: Session, seqs: set[int]) -> dict[int, tuple[str, ...]]:
    rows = session.execute(
        select(CohortMemberChange.seq, CohortMemberChange.user_key).where(
            CohortMemberChange.seq.in_(sorted(seqs))
        )
    )
    found: defaultdict[int, list[str]] = defaultdict(list)
    for seq, user_key in rows:
        found[seq].append(user_key)
    return {seq: tuple(keys) for seq, keys in found.items()}
