"""Launch scheduling: marketing picks when general rollout starts, for finished work only.

A launch can be scheduled only for a flag that is ready and already in early access in
that environment: the feature exists and the readiness work is done, so the date is a
plan for something real, never a promise about unfinished work. The scheduler that
runs due launches (``services.scheduler``) reads ``launch_at`` and the ramp to start
at (``launch_rollout_basis_points``); this module only stores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain.actions import Action
from flagsvc.domain.errors import ConflictError
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.stages import FULL_ROLLOUT_PERCENT
from flagsvc.domain.stages import Stage
from flagsvc.domain.stages import to_basis_points
from flagsvc.domain.stages import to_percent
from flagsvc.services import audit
from flagsvc.services import flag_states
from flagsvc.services.context import Change
from flagsvc.services.context import Precondition
from flagsvc.services.context import no_precondition
from flagsvc.services.flag_states import FlagStateDetail
from flagsvc.services.flag_states import Located
from flagsvc.services.flag_states import Where
from flagsvc.storage.models import Environment
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagState


def schedule_launch(
    session: Session,
    change: Change,
    where: Where,
    launch_at: datetime,
    precondition: Precondition = no_precondition,
    *,
    rollout_percent: Decimal = FULL_ROLLOUT_PERCENT,
) -> FlagStateDetail:
    """Schedule (or move) the start of general rollout in one environment.

    The launch moves the flag to ``general`` at ``rollout_percent`` (100 unless the
    caller wants the ramp to start lower); rescheduling may change either.

    :raise InvalidFieldError: ``launch_at`` is not in the future, or the ramp is not
        above 0 and at most 100.
    :raise ConflictError: the flag is not ready, or not in early access there.
    """
    if launch_at <= change.at:
        raise InvalidFieldError("launch_at", "must be in the future")
    if not Decimal(0) < rollout_percent <= FULL_ROLLOUT_PERCENT:
        raise InvalidFieldError("rollout_percent", "must be above 0 and at most 100")
    locked = flag_states.locate_checked(session, where, precondition)
    _check_launchable(locked)
    planned = (launch_at.astimezone(UTC), to_basis_points(rollout_percent))
    current = (locked.state.launch_at, locked.state.launch_rollout_basis_points)
    if current != planned:
        before = _launch_summary(*current)
        locked.state.launch_at, locked.state.launch_rollout_basis_points = planned
        after = _launch_summary(*planned)
        flag_states.record(session, change, locked, Action.FLAG_LAUNCH_SCHEDULED, before, after)
    return flag_states.detail(session, locked)


def launch_percent(state: FlagState) -> float | None:
    """The ramp the scheduled launch starts general rollout at (None: no launch)."""
    if state.launch_at is None:
        return None
    basis_points = state.launch_rollout_basis_points
    return float(FULL_ROLLOUT_PERCENT) if basis_points is None else float(to_percent(basis_points))


def _launch_summary(launch_at: datetime | None, basis_points: int | None) -> dict[str, Any]:
    """A launch as the audit records it (percent as a number, time as ISO 8601)."""
    percent = None if basis_points is None or launch_at is None else float(to_percent(basis_points))
    return {"launch_at": audit.iso(launch_at), "rollout_percent": percent}


def cancel_launch(
    session: Session,
    change: Change,
    where: Where,
    precondition: Precondition = no_precondition,
) -> FlagStateDetail:
    """Cancel the scheduled launch.

    With none scheduled this is a conflict (409), not a 404: the flag and environment
    exist, there is just nothing to cancel, and the caller learns its view was stale.

    :raise ConflictError: no launch is scheduled.
    """
    locked = flag_states.locate_checked(session, where, precondition)
    if locked.state.launch_at is None:
        raise ConflictError(
            f"no launch is scheduled for flag {where.flag_key!r} in {where.environment!r}"
        )
    state = locked.state
    before = _launch_summary(state.launch_at, state.launch_rollout_basis_points)
    state.launch_at, state.launch_rollout_basis_points = None, None
    flag_states.record(
        session, change, locked, Action.FLAG_LAUNCH_CANCELLED, before, _launch_summary(None, None)
    )
    return flag_states.detail(session, locked)


def _check_launchable(locked: Located) -> None:
    """Refuse a launch for unfinished work, naming what is missing or where it stands."""
    flag_key, environment = locked.flag.key, locked.state.environment.key
    if locked.missing_readiness:
        raise ConflictError(
            f"flag {flag_key!r} is not ready to launch; readiness items not done: "
            + ", ".join(locked.missing_readiness)
        )
    if locked.state.stage != Stage.EARLY_ACCESS.value:
        raise ConflictError(
            f"flag {flag_key!r} is in stage {locked.state.stage} in {environment!r}; "
            "a launch can be scheduled only from early_access"
        )


def scheduled(session: Session, environment: str | None = None) -> Sequence[FlagState]:
    """Every scheduled launch (flag states with a ``launch_at``), soonest first.

    Readiness pages list them apart: a flag with a launch scheduled is neither waiting
    for readiness nor waiting for someone to schedule it.
    """
    stmt = (
        select(FlagState)
        .join(Environment, Environment.id == FlagState.environment_id)
        .join(Flag, Flag.id == FlagState.flag_id)
        .where(FlagState.launch_at.is_not(None), Flag.archived_at.is_(None))
        .order_by(FlagState.launch_at, Flag.key, Environment.key)
    )
    if environment is not None:
        stmt = stmt.where(Environment.key == environment)
    return session.scalars(stmt).all()
