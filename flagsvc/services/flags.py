"""Flags: the global definition (key, OKR key result, flow item, values, readiness).

A flag is created dark in every environment and with the default readiness checklist,
so marketing sees what it owes before engineering asks for general rollout.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import Literal

from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm import joinedload
from sqlalchemy.orm import lazyload
from sqlalchemy.orm.attributes import set_committed_value

from flagsvc.domain.actions import Action
from flagsvc.domain.errors import ConflictError
from flagsvc.domain.errors import DuplicateKeyError
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.readiness import DEFAULT_ITEMS
from flagsvc.domain.readiness import ChecklistItem
from flagsvc.domain.readiness import is_ready
from flagsvc.domain.readiness import missing_items
from flagsvc.domain.stages import Stage
from flagsvc.domain.stages import to_percent
from flagsvc.domain.validation import RESOURCE_KEY
from flagsvc.domain.variations import ValueType
from flagsvc.domain.variations import VariationSet
from flagsvc.domain.variations import boolean_set
from flagsvc.domain.variations import problems
from flagsvc.services import audit
from flagsvc.services import environments
from flagsvc.services.context import Change
from flagsvc.services.context import Precondition
from flagsvc.services.context import etag_data
from flagsvc.services.context import no_precondition
from flagsvc.storage.models import Environment
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagState
from flagsvc.storage.models import KeyResult
from flagsvc.storage.models import ReadinessItem

FLAG_FIELDS = ("name", "description", "flow_item", "key_result_id")
Lock = Literal["update", "share"]

WITHOUT_FLAG = (lazyload(FlagState.flag),)
"""Options for reading states whose flag the caller holds already (it then sets it,
``with_flag``): the mapping's joined load would read the flag's columns again with
every state, and its checklist once more by ``selectin``."""


def with_flag(state: FlagState, flag: Flag) -> FlagState:
    """``state`` with ``flag`` as its loaded ``flag`` (read ``WITHOUT_FLAG``): set as if
    loaded, so nothing is marked changed and it is there once the session has closed."""
    set_committed_value(state, "flag", flag)
    return state


@dataclass(frozen=True, slots=True)
class EnvironmentStage:
    """Where a flag stands in one environment, as flag lists show it."""

    stage: str
    rollout_percent: float
    killed: bool


@dataclass(frozen=True, slots=True)
class FlagDetail:
    """A flag with what its representation shows beside the row itself."""

    flag: Flag
    objective_id: int
    states: Sequence[FlagState]

    @property
    def ready(self) -> bool:
        """Every required readiness item is done."""
        return is_ready(checklist(self.flag))

    @property
    def readiness(self) -> dict[str, Any]:
        """Checklist progress: items done, items in all, required items missing."""
        items = checklist(self.flag)
        done = sum(1 for item in items if item.done)
        return {"done": done, "total": len(items), "missing": missing_items(items)}

    @property
    def environments(self) -> dict[str, EnvironmentStage]:
        """Stage, ramp and kill switch per environment key."""
        return {state.environment.key: environment_stage(state) for state in self.states}


LIVE_STAGES = frozenset({Stage.EARLY_ACCESS.value, Stage.GENERAL.value, Stage.RELEASED.value})
"""Stages in which a flag reaches someone: it cannot be archived there."""


@dataclass(frozen=True, slots=True)
class FlagQuery:
    """Filters for the flag list; ``after`` is the cursor position (a flag id)."""

    q: str | None = None
    flow_item: str | None = None
    key_result_id: int | None = None
    objective_id: int | None = None
    stage: str | None = None
    environment: str | None = None
    after: int = 0
    archived: bool = False  # False: the flags in use; True: the archived ones only


def checklist(flag: Flag) -> list[ChecklistItem]:
    """The flag's readiness items as the domain rules see them."""
    return [
        ChecklistItem(item.item_key, item.label, item.required, item.done)
        for item in flag.readiness_items
    ]


def missing_readiness(flag: Flag) -> list[str]:
    """Keys of the required readiness items not yet done, in checklist order."""
    return missing_items(checklist(flag))


def percent(state: FlagState) -> float:
    """The ramp as a JSON-friendly number (stored as basis points: percent × 100)."""
    return float(to_percent(state.rollout_basis_points))


def environment_stage(state: FlagState) -> EnvironmentStage:
    """The summary of one environment's state that flag lists show."""
    return EnvironmentStage(state.stage, percent(state), state.killed)


def flag_etag(detail: FlagDetail) -> dict[str, object]:
    """ETag data of a flag's representation.

    It covers the readiness summary and the environment states the representation
    shows, so a conditional GET never answers 304 with a stale stage or checklist.
    """
    data = etag_data("flag", detail.flag.id, detail.flag.version)
    data["readiness"] = [[i.key, i.required, i.done] for i in checklist(detail.flag)]
    data["environments"] = sorted([s.environment.key, s.version] for s in detail.states)
    return data


_BY_KEY = select(Flag).where(Flag.key == bindparam("flag_key"))
WITH_CHECKLIST = _BY_KEY.options(joinedload(Flag.readiness_items))
"""The flag called ``:flag_key`` and its checklist at once, unlocked (``get_flag`` says
why): joined, not the mapping's separate ``selectin`` read, since every caller reads the
checklist (readiness, the gate, ETags).

This module's hot statements are built once, at import, with bound parameters: building
one costs 35-90 µs of CPU each time, a tenth of a small admin request's
(bench/admin_requests.py); a statement is compiled once per engine either way."""

_WITH_OBJECTIVE = WITH_CHECKLIST.add_columns(KeyResult.objective_id).join(
    KeyResult, Flag.key_result_id == KeyResult.id
)
_LOCKED: dict[Lock, Select[Flag]] = {
    "update": _BY_KEY.with_for_update(),
    "share": _BY_KEY.with_for_update(read=True),
}


def get_flag(session: Session, flag_key: str, *, lock: Lock | None = None) -> Flag:
    """The flag called ``flag_key`` with its checklist, locked ``FOR UPDATE`` /
    ``FOR SHARE`` if asked.

    A locked flag's checklist is read by a second statement, once the lock is held: in
    the same statement it would come from the snapshot taken before the wait (PostgreSQL
    re-reads only the locked row), and miss the items the lock holder just marked.

    :raise NotFoundError: there is none.
    """
    key = {"flag_key": checked_key(flag_key)}
    if lock:
        flag = session.scalar(_LOCKED[lock], key)
    else:
        flag = session.execute(WITH_CHECKLIST, key).unique().scalar_one_or_none()
    if flag is None:
        raise NotFoundError("flag", flag_key)
    return flag


def checked_key(flag_key: str) -> str:
    """``flag_key``, if it can name a flag at all (what cannot is never sent to the
    database: a NUL in it would upset PostgreSQL).

    :raise NotFoundError: it cannot.
    """
    if not RESOURCE_KEY.match(flag_key):
        raise NotFoundError("flag", flag_key)
    return flag_key


def get_flag_detail(session: Session, flag_key: str) -> FlagDetail:
    """The flag with its key result's objective and its state in every environment, in
    two statements: the flag with its checklist and objective, then its states.

    :raise NotFoundError: there is no such flag.
    """
    key = {"flag_key": checked_key(flag_key)}
    row = session.execute(_WITH_OBJECTIVE, key).unique().first()
    if row is None:
        raise NotFoundError("flag", flag_key)
    flag, objective_id = row
    return FlagDetail(flag, objective_id, _states_by_flag(session, [flag])[flag.id])


def list_flags(session: Session, query: FlagQuery, limit: int) -> list[FlagDetail]:
    """Flags matching ``query`` in creation order, in the same few queries for any page size."""
    stmt = _filtered(session, query).where(Flag.id > query.after).order_by(Flag.id).limit(limit)
    rows = session.execute(stmt).all()
    states = _states_by_flag(session, [flag for flag, _ in rows])
    return [FlagDetail(flag, objective_id, states.get(flag.id, [])) for flag, objective_id in rows]


FLAG_ORDERS = {  # how the UI's list sorts; every order ends on the id, so pages never overlap
    "created": (Flag.id,),
    "newest": (Flag.id.desc(),),
    "name": (func.lower(Flag.name), Flag.id),
    "key": (Flag.key,),
}


@dataclass(frozen=True, slots=True)
class FlagPage:
    """One page of a sorted flag list, with how many flags match in all."""

    rows: list[FlagDetail]
    total: int


def sorted_flags(
    session: Session, query: FlagQuery, order: str, offset: int, limit: int
) -> FlagPage:
    """Flags matching ``query`` sorted by ``order`` (a key of ``FLAG_ORDERS``), one page.

    Pages by position rather than by cursor: people jump back and forth between
    numbered pages of a list that is hundreds long at most, sorted by any column.
    """
    filtered = _filtered(session, query)
    total = session.scalar(select(func.count()).select_from(filtered.subquery())) or 0
    stmt = filtered.order_by(*FLAG_ORDERS[order]).offset(offset).limit(limit)
    rows = session.execute(stmt).all()
    states = _states_by_flag(session, [flag for flag, _ in rows])
    details = [
        FlagDetail(flag, objective_id, states.get(flag.id, [])) for flag, objective_id in rows
    ]
    return FlagPage(details, total)


def create_flag(session: Session, change: Change, fields: Mapping[str, Any]) -> FlagDetail:
    """Create a flag: dark (``off``) in every environment, default checklist, fresh salt.

    ``fields["values"]`` is its :class:`VariationSet` (a boolean flag without it),
    already checked by :func:`flagsvc.domain.variations.problems`.

    :raise DuplicateKeyError: the key is taken.
    :raise InvalidFieldError: the key result does not exist, or the values are invalid.
    """
    environments.hold_state_creation(session)  # no environment created meanwhile misses it
    if session.scalar(select(Flag.id).where(Flag.key == fields["key"])) is not None:
        raise DuplicateKeyError("flag", fields["key"])
    key_result = _key_result(session, fields["key_result_id"])
    flag = _new_flag(fields, change.at)
    _insert(session, flag)
    for environment in session.scalars(select(Environment).order_by(Environment.id)):
        session.add(environments.new_flag_state(flag, environment, change))
    session.flush()
    after = {
        "key": flag.key,
        **{name: getattr(flag, name) for name in FLAG_FIELDS},
        **variation_set(flag).as_fields(),
    }
    audit.record(session, change, Action.FLAG_CREATED, subject(flag), None, after)
    return FlagDetail(flag, key_result.objective_id, _states_by_flag(session, [flag])[flag.id])


def update_flag(
    session: Session,
    change: Change,
    flag_key: str,
    fields: Mapping[str, Any],
    precondition: Precondition = no_precondition,
) -> FlagDetail:
    """Change a flag's definition (If-Match checked after the row is locked).

    :raise InvalidFieldError: the new key result does not exist.
    """
    flag = get_flag(session, flag_key, lock="update")
    precondition(flag_etag(detail(session, flag)))
    if "key_result_id" in fields:
        _key_result(session, fields["key_result_id"])
    before, after = _apply(flag, fields)
    if after:
        session.flush()
        audit.record(session, change, Action.FLAG_UPDATED, subject(flag), before, after)
    return detail(session, flag)


def archive_flag(session: Session, change: Change, flag_key: str) -> FlagDetail:
    """Hide a flag that serves nobody from lists; its history stays in the audit.

    Archiving an archived flag changes nothing and records nothing.

    :raise ConflictError: the flag still reaches someone somewhere (early access,
        general or released): retire it or turn it off there first.
    """
    flag = get_flag(session, flag_key, lock="update")
    found = detail(session, flag)
    live = [s for s in found.states if s.stage in LIVE_STAGES]
    if live:
        where = ", ".join(f"{s.environment.key} ({s.stage.replace('_', ' ')})" for s in live)
        raise ConflictError(
            f"flag {flag_key!r} still reaches people in {where}: retire it or turn it off "
            "there before archiving"
        )
    if flag.archived_at is None:
        flag.archived_at = change.at
        after = {"archived_at": change.at.isoformat()}
        audit.record(
            session, change, Action.FLAG_ARCHIVED, subject(flag), {"archived_at": None}, after
        )
    return found


def unarchive_flag(session: Session, change: Change, flag_key: str) -> FlagDetail:
    """Bring an archived flag back into the lists (a flag in use: nothing changes)."""
    flag = get_flag(session, flag_key, lock="update")
    if flag.archived_at is not None:
        before = {"archived_at": flag.archived_at.isoformat()}
        flag.archived_at = None
        audit.record(
            session, change, Action.FLAG_UNARCHIVED, subject(flag), before, {"archived_at": None}
        )
    return detail(session, flag)


def variation_set(flag: Flag) -> VariationSet:
    """The flag's values as the domain rules see them."""
    value_type = ValueType(flag.value_type)
    return VariationSet(value_type, flag.variations, flag.on_variation, flag.off_variation)


def subject(flag: Flag, environment: str | None = None) -> audit.Subject:
    """What an audit event about ``flag`` (in ``environment``) is about."""
    return audit.Subject("flag", flag.key, flag_key=flag.key, environment=environment)


def _new_flag(fields: Mapping[str, Any], at: datetime) -> Flag:
    items = [
        ReadinessItem(item_key=key, label=label, required=True, done=False, note="", position=n)
        for n, (key, label) in enumerate(DEFAULT_ITEMS)
    ]
    values = {"description": "", **{f: fields[f] for f in FLAG_FIELDS if f in fields}}
    variations = checked(fields.get("values") or boolean_set())
    return Flag(
        **variations.as_fields(),
        key=fields["key"],
        **values,
        salt=secrets.token_hex(8),
        created_at=at,
        readiness_items=items,
    )


def checked(candidate: VariationSet) -> VariationSet:
    """``candidate`` normalised (a float flag's ``1`` is ``1.0``) if valid.

    :raise InvalidFieldError: naming the first field at fault.
    """
    found = problems(candidate)
    if found:
        raise InvalidFieldError(*found[0])
    return candidate.normalized()


def _insert(session: Session, flag: Flag) -> None:
    """Add the flag; a racing create of the same key (PostgreSQL) is a 409, not a 500."""
    session.add(flag)
    try:
        session.flush()
    except IntegrityError as error:
        raise DuplicateKeyError("flag", flag.key) from error


def _key_result(session: Session, key_result_id: int) -> KeyResult:
    """The key result a flag names, share-locked: a delete of it waits for this commit."""
    key_result = session.get(KeyResult, key_result_id, with_for_update={"read": True})
    if key_result is None:
        raise InvalidFieldError("key_result_id", f"key result {key_result_id} does not exist")
    return key_result


def _apply(flag: Flag, fields: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set the fields that differ; return their old and new values (empty: no change)."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name in FLAG_FIELDS:
        if name in fields and getattr(flag, name) != fields[name]:
            before[name], after[name] = getattr(flag, name), fields[name]
            setattr(flag, name, fields[name])
    return before, after


def detail(session: Session, flag: Flag) -> FlagDetail:
    """The flag with its key result's objective and its states (the API's representation)."""
    stmt = select(KeyResult.objective_id).where(KeyResult.id == flag.key_result_id)
    objective_id = session.execute(stmt).scalar_one()
    return FlagDetail(flag, objective_id, _states_by_flag(session, [flag])[flag.id])


def _states_by_flag(session: Session, flags: Sequence[Flag]) -> dict[int, list[FlagState]]:
    """Every state of the given flags in one query (no N+1 over a page), by flag id."""
    grouped: dict[int, list[FlagState]] = {flag.id: [] for flag in flags}
    if not flags:
        return grouped
    by_id = {flag.id: flag for flag in flags}
    stmt = select(FlagState).where(FlagState.flag_id.in_(by_id)).options(*WITHOUT_FLAG)
    for state in session.scalars(stmt.order_by(FlagState.environment_id)):
        grouped[state.flag_id].append(with_flag(state, by_id[state.flag_id]))
    return grouped


def _filtered(session: Session, query: FlagQuery) -> Select[Flag, int]:
    stmt = select(Flag, KeyResult.objective_id).join(KeyResult, Flag.key_result_id == KeyResult.id)
    if query.q:
        text = query.q
        stmt = stmt.where(
            Flag.key.icontains(text, autoescape=True) | Flag.name.icontains(text, autoescape=True)
        )
    if query.flow_item:
        stmt = stmt.where(Flag.flow_item == query.flow_item)
    if query.key_result_id is not None:
        stmt = stmt.where(Flag.key_result_id == query.key_result_id)
    if query.objective_id is not None:
        stmt = stmt.where(KeyResult.objective_id == query.objective_id)
    if query.stage:
        stmt = stmt.where(Flag.id.in_(_at_stage(session, query.stage, query.environment)))
    archived = Flag.archived_at.is_not(None)
    return stmt.where(archived if query.archived else ~archived)


def _at_stage(session: Session, stage: str, environment: str | None) -> Select[int]:
    """Ids of flags at ``stage`` in ``environment`` (in any environment when None).

    :raise NotFoundError: the environment does not exist.
    """
    stmt = select(FlagState.flag_id).where(FlagState.stage == stage)
    if environment is not None:
        env_id = environments.get_environment(session, environment).id
        stmt = stmt.where(FlagState.environment_id == env_id)
    return stmt
