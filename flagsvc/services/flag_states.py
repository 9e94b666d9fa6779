"""A flag's state in one environment: stage and ramp, cohorts, exclusions, kill switch.

Every command locks the flag row ``FOR SHARE`` (readiness cannot change under a stage
move, while moves in other environments still run side by side) and then the state
row ``FOR UPDATE``; the If-Match precondition runs after both locks. Every change
touches ``updated_at`` so the row's version (its ETag) moves, and writes one event.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import contains_eager
from sqlalchemy.orm.attributes import flag_modified

from flagsvc.domain.actions import Action
from flagsvc.domain.errors import ConflictError
from flagsvc.domain.errors import DomainError
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.stages import Gate
from flagsvc.domain.stages import Stage
from flagsvc.domain.stages import StagePosition
from flagsvc.domain.stages import is_rollback
from flagsvc.domain.stages import plan_move
from flagsvc.domain.stages import to_basis_points
from flagsvc.domain.stages import to_percent
from flagsvc.domain.validation import RESOURCE_KEY
from flagsvc.domain.variations import ValueType
from flagsvc.services import audit
from flagsvc.services import environments
from flagsvc.services import flags
from flagsvc.services import gate as gate_paths
from flagsvc.services.context import Change
from flagsvc.services.context import Precondition
from flagsvc.services.context import etag_data
from flagsvc.services.context import no_precondition
from flagsvc.storage.models import Cohort
from flagsvc.storage.models import Environment
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagExclusion
from flagsvc.storage.models import FlagState
from flagsvc.storage.models import FlagStateCohort

SAMPLE = 20  # user keys an exclusions event names; the counts say the rest
_TARGETED = frozenset({Stage.EARLY_ACCESS, Stage.GENERAL})  # stages where cohorts count
_DELETE_CHUNK = 1_000  # bound the IN list (SQLite and PostgreSQL cap bind parameters)


@dataclass(frozen=True, slots=True)
class Where:
    """Which state: a flag key and an environment key."""

    flag_key: str
    environment: str


@dataclass(frozen=True, slots=True)
class Located:
    """A flag, its state in one environment and the readiness items it still misses;
    row-locked when a command asked for it (``locate(lock=True)``), plain for reads."""

    flag: Flag
    state: FlagState
    missing_readiness: list[str]


@dataclass(frozen=True, slots=True)
class FlagStateDetail:
    """A state with what its representation shows beside the row."""

    state: FlagState
    cohorts: Sequence[str]
    exclusions: Sequence[str]
    missing_readiness: Sequence[str]
    cohort_variations: Mapping[str, str]
    """Cohorts that serve their own variation here (the others serve the on variation)."""

    @property
    def rollout_percent(self) -> float:
        """The ramp in percent (stored as basis points)."""
        return flags.percent(self.state)

    @property
    def readiness(self) -> dict[str, Any]:
        """Whether general rollout could start here as far as readiness goes."""
        return {"ready": not self.missing_readiness, "missing": list(self.missing_readiness)}


def state_etag(state: FlagState, missing: Sequence[str]) -> dict[str, object]:
    """ETag data of a state's representation (its row version plus the readiness it shows)."""
    return {**etag_data("flag_state", state.id, state.version), "missing": list(missing)}


def detail_etag(detail: FlagStateDetail) -> dict[str, object]:
    """ETag data of a representation already built."""
    return state_etag(detail.state, detail.missing_readiness)


def position(state: FlagState) -> StagePosition:
    """The state's place in the stage machine."""
    return StagePosition(Stage(state.stage), to_percent(state.rollout_basis_points))


def gate_of(state: FlagState, missing_readiness: Sequence[str]) -> Gate:
    """What the stage machine needs to know about the state's flag and environment."""
    environment = state.environment
    return Gate(state.flag.key, environment.key, environment.gated, missing_readiness)


def check_move(
    detail: FlagStateDetail, stage: Stage, rollout_percent: Decimal | None
) -> DomainError | None:
    """The refusal ``move_stage`` would raise for this move now, or None if it would pass.

    The same rule (``plan_move``) on the same state: the UI disables what the gate
    refuses and says why before anyone clicks.
    """
    try:
        plan_move(position(detail.state), stage, rollout_percent,
                  gate_of(detail.state, detail.missing_readiness))  # fmt: skip
    except DomainError as error:
        return error
    return None


_STATE_BESIDE = (contains_eager(FlagState.environment), *flags.WITHOUT_FLAG)
"""A state read with its flag at hand: the environment from the statement's join, the
flag set by the caller (the mapping would join both again)."""

_LOCATED = (
    flags.WITH_CHECKLIST.add_columns(FlagState)
    .join(FlagState, FlagState.flag_id == Flag.id)
    .join(FlagState.environment)
    .where(Environment.key == bindparam("environment"))
    .options(*_STATE_BESIDE)
)
"""The flag, its checklist, its state in ``:environment`` and the environment, unlocked;
built once like ``flags.WITH_CHECKLIST`` (which says why)."""

_LOCKED_STATE = (
    select(FlagState)
    .join(FlagState.environment)
    .where(FlagState.flag_id == bindparam("flag_id"), Environment.key == bindparam("environment"))
    .options(*_STATE_BESIDE)
    .with_for_update(of=FlagState)
)
"""The state of ``:flag_id`` in ``:environment``, ``FOR UPDATE`` (the environment, joined,
unlocked as it always was)."""


def locate(session: Session, where: Where, *, lock: bool = False) -> Located:
    """Load the flag (with its checklist) and its state in the environment (with the
    environment), locked for a command.

    :raise NotFoundError: the flag or the environment does not exist.
    """
    if lock:
        return _locate_locked(session, where)
    keys = {"flag_key": flags.checked_key(where.flag_key), "environment": where.environment}
    row = None
    if RESOURCE_KEY.match(where.environment):  # else it cannot exist: don't send it
        row = session.execute(_LOCATED, keys).unique().first()
    if row is None:
        raise _not_found(session, where)
    flag, state = row
    return Located(flag, flags.with_flag(state, flag), flags.missing_readiness(flag))


def _locate_locked(session: Session, where: Where) -> Located:
    """The flag ``FOR SHARE``, then its state ``FOR UPDATE``: two statements, in that
    order, as every command takes them (one statement would lock both in an order the
    plan picks)."""
    flag = flags.get_flag(session, where.flag_key, lock="share")
    state = None
    if RESOURCE_KEY.match(where.environment):  # else it cannot exist: don't send it
        keys = {"flag_id": flag.id, "environment": where.environment}
        state = session.scalar(_LOCKED_STATE, keys)
    if state is None:
        raise _not_found(session, where)
    return Located(flag, flags.with_flag(state, flag), flags.missing_readiness(flag))


def _not_found(session: Session, where: Where) -> NotFoundError:
    """What is missing, read only once ``locate`` found nothing: the flag, else the
    environment, else (neither is missing) the state."""
    flags.get_flag(session, where.flag_key)
    if not RESOURCE_KEY.match(where.environment):
        return NotFoundError("environment", where.environment)
    environments.get_environment(session, where.environment)
    return NotFoundError("flag state", f"{where.flag_key}/{where.environment}")


def locate_checked(session: Session, where: Where, precondition: Precondition) -> Located:
    """Lock the state, then check the caller's If-Match against it.

    :raise ConflictError: the flag is archived (restore it before changing it).
    """
    locked = locate(session, where, lock=True)
    if locked.flag.archived_at is not None:
        raise ConflictError(f"flag {where.flag_key!r} is archived: restore it before changing it")
    precondition(state_etag(locked.state, locked.missing_readiness))
    return locked


def get_state(session: Session, where: Where) -> FlagStateDetail:
    """The flag's state in the environment with its cohorts and exclusions."""
    return detail(session, locate(session, where))


def detail(session: Session, locked: Located) -> FlagStateDetail:
    """Build the representation of a state (after any change is flushed)."""
    session.flush()
    return _details(session, [locked.state], locked.missing_readiness)[0]


def in_every_environment(
    session: Session, found: flags.FlagDetail, envs: Sequence[Environment]
) -> list[FlagStateDetail]:
    """The representation of the flag's state in each of ``envs`` (in their order), from
    the states ``found`` holds: a page that shows every environment reads their cohorts
    and exclusions in two statements, where ``get_state`` per environment read the flag
    again and took three statements each.

    :raise NotFoundError: the flag has no state in one of them (as ``get_state`` would).
    """
    by_environment = {state.environment_id: state for state in found.states}
    for environment in envs:
        if environment.id not in by_environment:
            raise NotFoundError("flag state", f"{found.flag.key}/{environment.key}")
    states = [by_environment[environment.id] for environment in envs]
    return _details(session, states, flags.missing_readiness(found.flag))


def _details(
    session: Session, states: Sequence[FlagState], missing: Sequence[str]
) -> list[FlagStateDetail]:
    ids = [state.id for state in states]
    cohorts = _cohorts(session, ids)
    exclusions: dict[int, list[str]] = {state_id: [] for state_id in ids}
    for state_id, user_key in session.execute(_EXCLUSIONS, {"state_ids": ids}):
        exclusions[state_id].append(user_key)
    shown = []
    for state in states:
        keys, own = cohorts[state.id]
        shown.append(FlagStateDetail(state, keys, exclusions[state.id], list(missing), own))
    return shown


_EXCLUSIONS = (
    select(FlagExclusion.flag_state_id, FlagExclusion.user_key)
    .where(FlagExclusion.flag_state_id.in_(bindparam("state_ids", expanding=True)))
    .order_by(FlagExclusion.flag_state_id, FlagExclusion.user_key)
)


def move_stage(
    session: Session,
    change: Change,
    where: Where,
    stage: Stage,
    rollout_percent: Decimal | None,
    precondition: Precondition = no_precondition,
) -> FlagStateDetail:
    """Move to ``stage`` (and ramp) as the stage machine allows.

    A move out of early access drops a scheduled launch: it was only ever a plan to
    start general rollout from there.

    :raise InvalidFieldError: ``rollout_percent`` for a stage other than general.
    :raise InvalidTransitionError: the move changes nothing.
    :raise ReadinessRequiredError: it widens general exposure in a gated environment
        before readiness is complete.
    """
    locked = locate_checked(session, where, precondition)
    state = locked.state
    gate = gate_of(state, locked.missing_readiness)
    current = position(state)
    target = plan_move(current, stage, rollout_percent, gate)
    if target.stage in _TARGETED:
        _refuse_catch_all_in_use(session, locked)
    before, after = _position_summary(current), _position_summary(target)
    after["direction"] = "rollback" if is_rollback(current, target) else "forward"
    if state.launch_at is not None and target.stage is not Stage.EARLY_ACCESS:
        before["launch_at"], after["launch_at"] = audit.iso(state.launch_at), None
        state.launch_at = None
    state.stage = target.stage.value
    state.rollout_basis_points = to_basis_points(target.rollout_percent)
    record(session, change, locked, Action.FLAG_STAGE_CHANGED, before, after)
    return detail(session, locked)


def set_killed(
    session: Session,
    change: Change,
    where: Where,
    killed: bool,
    precondition: Precondition = no_precondition,
) -> FlagStateDetail:
    """Flip the kill switch; flipping it to where it already is writes nothing."""
    locked = locate_checked(session, where, precondition)
    if locked.state.killed and not killed and Stage(locked.state.stage) in _TARGETED:
        _refuse_catch_all_in_use(session, locked)
    if locked.state.killed != killed:
        locked.state.killed = killed
        summary = {"stage": locked.state.stage, "rollout_percent": flags.percent(locked.state)}
        action = Action.FLAG_KILLED if killed else Action.FLAG_RESUMED
        before, after = {"killed": not killed, **summary}, {"killed": killed, **summary}
        record(session, change, locked, action, before, after)
    return detail(session, locked)


def set_cohorts(
    session: Session,
    change: Change,
    where: Where,
    cohort_keys: Sequence[str],
    precondition: Precondition = no_precondition,
    own_variations: Mapping[str, str] | None = None,
) -> FlagStateDetail:
    """Set the early-access cohorts, in order (the first match is the one reported), and
    the variation each serves (``own_variations``: cohort -> variation key; the cohorts
    not named there serve the on variation).

    :raise InvalidFieldError: some cohort keys name no cohort, or a variation is not
        the flag's, names an unlisted cohort, or is given for a boolean flag.
    """
    locked = locate_checked(session, where, precondition)
    cohorts = _known_cohorts(session, cohort_keys)
    if gate_paths.held(locked.state, locked.missing_readiness):
        _refuse_catch_all(locked, cohorts)
    cohort_ids = {cohort.key: cohort.id for cohort in cohorts}
    wanted = {"cohorts": list(cohort_keys), **_variations_summary(own_variations or {})}
    _check_own_variations(locked.flag, cohort_keys, own_variations or {})
    state_id = locked.state.id
    attached, attached_own = _cohorts(session, [state_id])[state_id]
    before = {"cohorts": attached, **_variations_summary(attached_own)}
    if before != wanted:
        own = own_variations or {}
        session.execute(delete(FlagStateCohort).where(FlagStateCohort.flag_state_id == state_id))
        session.add_all(
            FlagStateCohort(
                flag_state_id=state_id,
                cohort_id=cohort_ids[key],
                position=n,
                variation=own.get(key),
            )
            for n, key in enumerate(cohort_keys)
        )
        record(session, change, locked, Action.FLAG_COHORTS_SET, before, wanted)
    return detail(session, locked)


def _variations_summary(own: Mapping[str, str]) -> dict[str, Any]:
    """The audit's view of the cohorts' own variations (left out when there are none, so a
    boolean flag's events read as they always did)."""
    return {"variations": dict(own)} if own else {}


def _check_own_variations(flag: Flag, cohort_keys: Sequence[str], own: Mapping[str, str]) -> None:
    if not own:
        return
    values = flags.variation_set(flag)
    if values.value_type is ValueType.BOOLEAN:
        raise InvalidFieldError("variations", "a boolean flag serves on (true) to every cohort")
    for cohort, variation in own.items():
        if cohort not in cohort_keys:
            raise InvalidFieldError(f"variations.{cohort}", "is not one of the listed cohorts")
        if variation not in values.keys:
            raise InvalidFieldError(
                f"variations.{cohort}", f"must be one of the variations: {', '.join(values.keys)}"
            )


def set_exclusions(
    session: Session,
    change: Change,
    where: Where,
    user_keys: Sequence[str],
    precondition: Precondition = no_precondition,
) -> FlagStateDetail:
    """Replace the users who never get the flag here (repeated keys count once)."""
    locked = locate_checked(session, where, precondition)
    state_id = locked.state.id
    current = set(
        session.scalars(
            select(FlagExclusion.user_key).where(FlagExclusion.flag_state_id == state_id)
        )
    )
    wanted = list(dict.fromkeys(user_keys))
    added = [user for user in wanted if user not in current]
    removed = sorted(current.difference(wanted))
    if added or removed:
        _delete_exclusions(session, state_id, removed)
        if added:
            rows = [{"flag_state_id": state_id, "user_key": user} for user in added]
            session.execute(insert(FlagExclusion), rows)
        after = _exclusions_summary(len(wanted), added, removed)
        record(session, change, locked, Action.FLAG_EXCLUSIONS_SET, {"count": len(current)}, after)
    return detail(session, locked)


def _refuse_catch_all_in_use(session: Session, locked: Located) -> None:
    """Cohorts start to count (early access, resume): none may be a catch-all while held."""
    if gate_paths.held(locked.state, locked.missing_readiness):
        _refuse_catch_all(locked, gate_paths.attached_cohorts(session, locked.state))


def _refuse_catch_all(locked: Located, cohorts: Sequence[Cohort]) -> None:
    environment = locked.state.environment.key
    gate_paths.refuse_catch_all_attached(
        locked.flag.key, environment, cohorts, locked.missing_readiness
    )


def record(
    session: Session, change: Change, locked: Located, action: Action, before: Any, after: Any
) -> None:
    """Bump the state's version and audit the change in the same transaction.

    ``updated_at`` is marked modified even when the clock has not moved, so the
    UPDATE (and with it the version, the ETag) always happens.
    """
    locked.state.updated_at = change.at
    flag_modified(locked.state, "updated_at")
    session.flush()
    subject = flags.subject(locked.flag, locked.state.environment.key)
    audit.record(session, change, action, subject, before, after)


def _position_summary(position: StagePosition) -> dict[str, Any]:
    return {"stage": position.stage.value, "rollout_percent": float(position.rollout_percent)}


def _cohorts(
    session: Session, state_ids: Sequence[int]
) -> dict[int, tuple[list[str], dict[str, str]]]:
    """Per state: its cohorts in order, and those serving their own variation (cohort ->
    variation; the others serve the on variation). One statement for all of it."""
    found: dict[int, tuple[list[str], dict[str, str]]] = {i: ([], {}) for i in state_ids}
    for state_id, key, variation in session.execute(_COHORTS, {"state_ids": state_ids}):
        keys, own = found[state_id]
        keys.append(key)
        if variation is not None:
            own[key] = variation
    return found


_COHORTS = (
    select(FlagStateCohort.flag_state_id, Cohort.key, FlagStateCohort.variation)
    .join(FlagStateCohort, FlagStateCohort.cohort_id == Cohort.id)
    .where(FlagStateCohort.flag_state_id.in_(bindparam("state_ids", expanding=True)))
    .order_by(FlagStateCohort.flag_state_id, FlagStateCohort.position)
)


def _known_cohorts(session: Session, cohort_keys: Sequence[str]) -> list[Cohort]:
    """The named cohorts, read once and share-locked (the gate checks their rules, the
    rows get their ids): a racing delete (which locks the row for update) either waits
    and then finds the cohort in use, or wins and this finds it gone.

    :raise InvalidFieldError: some keys name no cohort.
    """
    cohorts = gate_paths.locked_cohorts(session, cohort_keys)
    found = {cohort.key for cohort in cohorts}
    unknown = [key for key in cohort_keys if key not in found]
    if unknown:
        raise InvalidFieldError("cohorts", f"no such cohorts: {', '.join(unknown)}")
    return cohorts


def _delete_exclusions(session: Session, state_id: int, user_keys: Sequence[str]) -> None:
    for start in range(0, len(user_keys), _DELETE_CHUNK):
        chunk = user_keys[start : start + _DELETE_CHUNK]
        session.execute(
            delete(FlagExclusion).where(
                FlagExclusion.flag_state_id == state_id, FlagExclusion.user_key.in_(chunk)
            )
        )


def _exclusions_summary(count: int, added: Sequence[str], removed: Sequence[str]) -> dict[str, Any]:
    return {
        "count": count,
        "added_count": len(added),
        "removed_count": len(removed),
        "added": sorted(added)[:SAMPLE],
        "removed": list(removed[:SAMPLE]),
    }
