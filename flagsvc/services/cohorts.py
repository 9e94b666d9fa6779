"""Early-adopter cohorts: their definition (rules, opt-in) and their members.

Membership is a separate collection from the definition: imports and opt-in
enrolments never bump the cohort's ``version``, so a busy opt-in cohort does not
turn every edit of its rules into a 412. Member changes lock the cohort row, so
imports and enrolments on one cohort are serialised and their counts exact.

Bulk member changes are set operations done in chunks (one ``IN`` query per
1,000 keys, one multi-row ``INSERT``), so a 100,000-key import is a few hundred
statements, not 100,000, and it writes one audit event, not one per member.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flagsvc.domain.actions import Action
from flagsvc.domain.errors import ConflictError
from flagsvc.domain.errors import DuplicateKeyError
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.errors import PermissionDeniedError
from flagsvc.domain.errors import TooLargeError
from flagsvc.domain.validation import USER_KEY_MAX
from flagsvc.domain.validation import unstorable_text
from flagsvc.services import audit
from flagsvc.services import gate
from flagsvc.services import member_journal
from flagsvc.services.context import Change
from flagsvc.services.context import Precondition
from flagsvc.services.context import etag_data
from flagsvc.services.context import no_precondition
from flagsvc.storage.models import Cohort
from flagsvc.storage.models import CohortMember
from flagsvc.storage.models import Environment
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagState
from flagsvc.storage.models import FlagStateCohort

_MEMBERS = Cohort.metadata.tables[CohortMember.__tablename__]  # Core insert: no per-row ORM work
_COHORTS = Cohort.metadata.tables[Cohort.__tablename__]  # Core update: the version stays
MAX_KEYS_PER_REQUEST = 100_000
"""Default for the most user keys one ``add`` or ``remove`` list may hold (callers check
the configured ``FLAGSVC_MAX_MEMBERS_PER_REQUEST``); bigger imports are split."""
MAX_KEYS_CEILING = 1_000_000
"""What this service accepts in one list whatever the configuration says."""
AUDIT_SAMPLE = 20
"""How many user keys a bulk member event names (the count covers the rest)."""
SOURCE_IMPORT = "import"
SOURCE_OPT_IN = "opt_in"
EDITABLE_FIELDS = ("name", "description", "rules", "opt_in")
_CHUNK = 1_000  # keys per IN (...) list: well under SQLite's and PostgreSQL's bind limits
_SCAN_RATIO = 10  # read the whole cohort when it is at most this many times the request


@dataclass(frozen=True, slots=True)
class CohortSpec:
    """Everything a new cohort is made of, checked by the caller's schema."""

    key: str
    name: str
    description: str = ""
    rules: Sequence[Mapping[str, Any]] = ()
    opt_in: bool = False


@dataclass(frozen=True, slots=True)
class MembersChanged:
    """What a bulk member change did: counts of rows actually added / removed."""

    added: int
    removed: int
    member_count: int


def cohort_etag(cohort: Cohort) -> dict[str, object]:
    """What the cohort's ETag is computed from: its definition's version."""
    return etag_data("cohort", cohort.id, cohort.version)


def get_cohort(session: Session, key: str, *, for_update: bool = False) -> Cohort:
    """The cohort called ``key`` (locked when ``for_update``, for a change).

    The lock is PostgreSQL's ``FOR NO KEY UPDATE``: it serialises changes to one
    cohort yet lets flag states keep referencing it (their foreign-key checks take
    ``KEY SHARE``), so a long import never stalls ``PUT …/cohorts`` on a flag.

    :raise NotFoundError: there is none.
    """
    stmt = select(Cohort).where(Cohort.key == key)
    cohort = session.scalar(stmt.with_for_update(key_share=True) if for_update else stmt)
    if cohort is None:
        raise NotFoundError("cohort", key)
    return cohort


def list_cohorts(session: Session, after_id: int, limit: int) -> Sequence[Cohort]:
    """Cohorts in creation order after the cursor position ``after_id``."""
    stmt = select(Cohort).where(Cohort.id > after_id).order_by(Cohort.id).limit(limit)
    return session.scalars(stmt).all()


def member_count(session: Session, cohort_id: int) -> int:
    """How many explicit members the cohort has (kept with every change, not counted:
    counting a million members took 0.1-0.2 s)."""
    stmt = select(_COHORTS.c.member_count).where(_COHORTS.c.id == cohort_id)
    return session.scalar(stmt) or 0


def member_counts(session: Session, cohort_ids: Sequence[int]) -> dict[int, int]:
    """Member counts for a page of cohorts in one query (absent = 0)."""
    stmt = select(_COHORTS.c.id, _COHORTS.c.member_count).where(_COHORTS.c.id.in_(cohort_ids))
    return {cohort_id: count for cohort_id, count in session.execute(stmt)}


def _counted(session: Session, cohort_id: int, added: Sequence[str], removed: Sequence[str]) -> int:
    """Move the kept member count by what a change did; the count after it.

    A Core UPDATE, not the ORM row: member changes must not bump the cohort's version
    (its ETag). The caller holds the row's lock, so concurrent changes add up.
    """
    stmt = (
        update(_COHORTS)
        .where(_COHORTS.c.id == cohort_id)
        .values(member_count=_COHORTS.c.member_count + len(added) - len(removed))
        .returning(_COHORTS.c.member_count)
    )
    return int(session.execute(stmt).scalar_one())


def used_by(session: Session, cohort_id: int) -> list[dict[str, str]]:
    """Each flag and environment whose state lists the cohort (what an edit affects)."""
    stmt = (
        select(Flag.key, Environment.key)
        .select_from(FlagStateCohort)
        .join(FlagState, FlagState.id == FlagStateCohort.flag_state_id)
        .join(Flag, Flag.id == FlagState.flag_id)
        .join(Environment, Environment.id == FlagState.environment_id)
        .where(FlagStateCohort.cohort_id == cohort_id)
        .order_by(Flag.key, Environment.id)
    )
    return [{"flag": flag, "environment": env} for flag, env in session.execute(stmt)]


def create_cohort(session: Session, change: Change, spec: CohortSpec) -> Cohort:
    """Create a cohort (with no members yet) and audit it."""
    if session.scalar(select(Cohort.id).where(Cohort.key == spec.key)) is not None:
        raise DuplicateKeyError("cohort", spec.key)
    cohort = Cohort(
        key=spec.key,
        name=spec.name,
        description=spec.description,
        rules=[dict(rule) for rule in spec.rules],
        opt_in=spec.opt_in,
        created_at=change.at,
    )
    session.add(cohort)
    try:
        session.flush()
    except IntegrityError as error:  # a racing create of the same key (PostgreSQL): 409
        raise DuplicateKeyError("cohort", spec.key) from error
    subject = audit.Subject("cohort", cohort.key)
    audit.record(session, change, Action.COHORT_CREATED, subject, None, cohort_summary(cohort))
    return cohort


def update_cohort(
    session: Session,
    change: Change,
    key: str,
    changes: Mapping[str, Any],
    precondition: Precondition = no_precondition,
) -> Cohort:
    """Apply ``changes`` (a subset of ``EDITABLE_FIELDS``) under the caller's If-Match.

    Only fields whose value really changes are written and audited; a no-op writes
    nothing and keeps the version (and so the ETag).
    """
    cohort = get_cohort(session, key, for_update=True)
    precondition(cohort_etag(cohort))
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidFieldError(sorted(unknown)[0], "cannot be changed")
    after = {f: v for f, v in changes.items() if getattr(cohort, f) != v}
    if not after:
        return cohort
    if "rules" in after:
        gate.refuse_catch_all_rules(session, cohort, after["rules"])
    before = {f: getattr(cohort, f) for f in after}
    for field, value in after.items():
        setattr(cohort, field, value)
    session.flush()
    audit.record(
        session, change, Action.COHORT_UPDATED, audit.Subject("cohort", key), before, after
    )
    return cohort


def delete_cohort(
    session: Session, change: Change, key: str, precondition: Precondition = no_precondition
) -> None:
    """Delete a cohort no flag uses, with its members; audited with what it was.

    Locked ``FOR UPDATE`` (not the edits' ``NO KEY UPDATE``): a flag attaching it at the
    same moment waits for this commit instead of slipping in before the delete.

    :raise ConflictError: a flag state still lists it (naming how many and the first).
    """
    cohort = session.scalar(select(Cohort).where(Cohort.key == key).with_for_update())
    if cohort is None:
        raise NotFoundError("cohort", key)
    precondition(cohort_etag(cohort))
    uses = used_by(session, cohort.id)
    if uses:
        first = f"{uses[0]['flag']} in {uses[0]['environment']}"
        more = f" and {len(uses) - 1} more" if len(uses) > 1 else ""
        raise ConflictError(
            f"cohort {key!r} is used by {len(uses)} flag state(s) ({first}{more}); "
            "take it off those flags first"
        )
    before = {**cohort_summary(cohort), "members": member_count(session, cohort.id)}
    session.execute(delete(CohortMember).where(CohortMember.cohort_id == cohort.id))
    session.delete(cohort)
    session.flush()
    audit.record(session, change, Action.COHORT_DELETED, audit.Subject("cohort", key), before, None)


def change_members(
    session: Session,
    change: Change,
    cohort_key: str,
    add: Sequence[str],
    remove: Sequence[str],
    precondition: Precondition = no_precondition,
) -> MembersChanged:
    """Bulk, idempotent member import / removal: one audit event per direction.

    Adding a member already there or removing one who is not is no error; the
    counts say what really changed. Nothing changed: nothing is audited.
    """
    add, remove = _checked_keys("add", add), _checked_keys("remove", remove)
    both = set(add).intersection(remove)
    if both:
        raise InvalidFieldError("remove", f"also listed in add: {sorted(both)[:AUDIT_SAMPLE]}")
    cohort = get_cohort(session, cohort_key, for_update=True)
    precondition(cohort_etag(cohort))
    count = member_count(session, cohort.id)  # exact: the row is locked
    added = _insert_members(session, cohort.id, add, SOURCE_IMPORT, change.at, count)
    removed = _delete_members(session, cohort.id, remove, count + len(added))
    _record_bulk(session, change, cohort.key, Action.COHORT_MEMBERS_ADDED, added)
    _record_bulk(session, change, cohort.key, Action.COHORT_MEMBERS_REMOVED, removed)
    return MembersChanged(len(added), len(removed), _counted(session, cohort.id, added, removed))


def list_members(
    session: Session, cohort_key: str, after_key: str | None, limit: int
) -> Sequence[CohortMember]:
    """Members ordered by user key, after the cursor position ``after_key``."""
    cohort = get_cohort(session, cohort_key)
    stmt = select(CohortMember).where(CohortMember.cohort_id == cohort.id)
    if after_key is not None:
        stmt = stmt.where(CohortMember.user_key > after_key)
    return session.scalars(stmt.order_by(CohortMember.user_key).limit(limit)).all()


@dataclass(frozen=True, slots=True)
class MemberPage:
    """One page of a cohort's members found by a search, and how many it found in all."""

    members: Sequence[CohortMember]
    found: int


def search_members(
    session: Session, cohort_key: str, text: str, offset: int, limit: int
) -> MemberPage:
    """Members whose user key contains ``text`` (all when empty: the kept count, not a
    count of every member), by user key, one page.

    :raise NotFoundError: there is no such cohort.
    """
    cohort = get_cohort(session, cohort_key)
    stmt = select(CohortMember).where(CohortMember.cohort_id == cohort.id)
    if text:
        stmt = stmt.where(CohortMember.user_key.icontains(text, autoescape=True))
        found = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    else:
        found = member_count(session, cohort.id)
    page = stmt.order_by(CohortMember.user_key).offset(offset).limit(limit)
    return MemberPage(session.scalars(page).all(), found)


@dataclass(frozen=True, slots=True)
class Membership:
    """Who joins or leaves which opt-in cohort, through an SDK key of ``environment``."""

    cohort_key: str
    user_key: str
    environment: str


def enroll(session: Session, change: Change, membership: Membership) -> bool:
    """A user enrols themselves in an opt-in cohort; True if they were not yet in it.

    :raise PermissionDeniedError: no flag uses the cohort in the SDK key's environment.
    :raise InvalidFieldError: the cohort is not opt-in, or the user key is malformed.
    """
    cohort = _opt_in_cohort(session, membership)
    user_key = membership.user_key
    if session.get(CohortMember, (cohort.id, user_key)) is not None:
        return False
    session.add(
        CohortMember(
            cohort_id=cohort.id, user_key=user_key, source=SOURCE_OPT_IN, added_at=change.at
        )
    )
    session.flush()
    _counted(session, cohort.id, [user_key], [])
    after = {"user_key": user_key, "source": SOURCE_OPT_IN}
    subject = audit.Subject("cohort", cohort.key)
    audit.record(session, change, Action.COHORT_MEMBER_ENROLLED, subject, None, after)
    return True


def leave(session: Session, change: Change, membership: Membership) -> bool:
    """A user leaves an opt-in cohort (however they joined); True if they were in it.

    :raise PermissionDeniedError: no flag uses the cohort in the SDK key's environment.
    :raise InvalidFieldError: the cohort is not opt-in, or the user key is malformed.
    """
    cohort = _opt_in_cohort(session, membership)
    user_key = membership.user_key
    member = session.get(CohortMember, (cohort.id, user_key))
    if member is None:
        return False
    before = {"user_key": user_key, "source": member.source}
    session.delete(member)
    session.flush()
    _counted(session, cohort.id, [], [user_key])
    after = {"user_key": user_key, "source": SOURCE_OPT_IN}
    subject = audit.Subject("cohort", cohort.key)
    audit.record(session, change, Action.COHORT_MEMBER_LEFT, subject, before, after)
    return True


def cohort_summary(cohort: Cohort) -> dict[str, object]:
    """The audit's view of a cohort's definition (members are audited separately)."""
    return {f: getattr(cohort, f) for f in ("key", *EDITABLE_FIELDS)}


def user_key_problem(user_key: object) -> str | None:
    """Why ``user_key`` cannot be a member's key, or None if it can."""
    if not isinstance(user_key, str):
        return "must be a string"
    if not 1 <= len(user_key) <= USER_KEY_MAX:
        return f"must be 1-{USER_KEY_MAX} characters"
    return unstorable_text(user_key)


def _checked_keys(field: str, keys: Sequence[str]) -> list[str]:
    """``keys`` without repeats, in order; refuses over-long lists and bad keys."""
    if len(keys) > MAX_KEYS_CEILING:
        raise TooLargeError(field, MAX_KEYS_CEILING, len(keys), "user keys")
    for key in keys:
        problem = user_key_problem(key)
        if problem:
            raise InvalidFieldError(field, f"user key {str(key)[:40]!r} {problem}")
    return list(dict.fromkeys(keys))


def _opt_in_cohort(session: Session, membership: Membership) -> Cohort:
    """The cohort, locked, after checking users may join or leave it themselves here.

    An SDK key reaches only its own environment: a development key must not change who
    gets a flag in production, so the cohort must be an early-access cohort of some
    flag in the key's environment.
    """
    problem = user_key_problem(membership.user_key)
    if problem:
        raise InvalidFieldError("user_key", problem)
    cohort_key = membership.cohort_key
    cohort = get_cohort(session, cohort_key, for_update=True)
    if not _used_in(session, cohort.id, membership.environment):
        raise PermissionDeniedError(
            f"cohort {cohort_key!r} is not an early-access cohort of any flag in "
            f"{membership.environment!r}; this SDK key may enrol users only in those"
        )
    if not cohort.opt_in:
        raise InvalidFieldError(
            "cohort", f"cohort {cohort_key!r} is not opt-in; users cannot join or leave it"
        )
    return cohort


def _used_in(session: Session, cohort_id: int, environment: str) -> bool:
    """Whether some flag's state in ``environment`` lists the cohort."""
    stmt = (
        select(FlagStateCohort.cohort_id)
        .join(FlagState, FlagState.id == FlagStateCohort.flag_state_id)
        .join(Environment, Environment.id == FlagState.environment_id)
        .where(FlagStateCohort.cohort_id == cohort_id, Environment.key == environment)
        .limit(1)
    )
    return session.scalar(stmt) is not None


def _chunks(keys: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(keys), _CHUNK):
        yield keys[start : start + _CHUNK]


def _already_members(session: Session, cohort_id: int, keys: Sequence[str], count: int) -> set[str]:
    """Which of ``keys`` are members already, in a cohort of ``count`` members.

    When the cohort is not much bigger than the request, one scan of its members
    beats many ``IN`` lists (measured: 25k keys against 100k members take 0.12 s
    either way on SQLite, but 0.12 s vs 1.2 s on PostgreSQL right after a big import,
    before autoanalyze has seen the new rows); an import into an empty cohort costs
    nothing more. A few keys against a big cohort are looked up chunk by chunk.
    """
    if not keys:
        return set()
    member = CohortMember.user_key
    in_cohort = select(member).where(CohortMember.cohort_id == cohort_id)
    if count <= _SCAN_RATIO * len(keys):
        return set(session.scalars(in_cohort)).intersection(keys)
    found: set[str] = set()
    for chunk in _chunks(keys):
        found.update(session.scalars(in_cohort.where(member.in_(chunk))))
    return found


def _insert_members(
    session: Session, cohort_id: int, keys: Sequence[str], source: str, at: datetime, count: int
) -> list[str]:
    """Insert the keys that are not members yet, in one bulk statement; return them."""
    present = _already_members(session, cohort_id, keys, count)
    new = [key for key in keys if key not in present]
    if new:
        rows = [
            {"cohort_id": cohort_id, "user_key": key, "source": source, "added_at": at}
            for key in new
        ]
        session.execute(insert(_MEMBERS), rows)
    return new


def _delete_members(session: Session, cohort_id: int, keys: Sequence[str], count: int) -> list[str]:
    """Delete the keys that are members, ``IN`` chunk by chunk; return them."""
    present = _already_members(session, cohort_id, keys, count)
    gone = [key for key in keys if key in present]
    for chunk in _chunks(gone):
        session.execute(
            delete(CohortMember)
            .where(CohortMember.cohort_id == cohort_id, CohortMember.user_key.in_(chunk))
            .execution_options(synchronize_session=False)
        )
    return gone


def _record_bulk(
    session: Session, change: Change, cohort_key: str, action: Action, keys: Sequence[str]
) -> None:
    """One event for a whole bulk change: its size and a sample, never every key; the
    keys beyond the sample go to the member journal, for the snapshot build."""
    if not keys:
        return
    after = {"count": len(keys), "sample": list(keys[:AUDIT_SAMPLE]), "source": SOURCE_IMPORT}
    subject = audit.Subject("cohort", cohort_key)
    event = audit.record(session, change, action, subject, None, after)
    if len(keys) > AUDIT_SAMPLE:
        member_journal.record(session, event.seq, keys)
