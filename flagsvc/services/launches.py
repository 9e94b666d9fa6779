"""Launch scheduling: marketing picks when general rollout starts, for finished work only.

A launch can be scheduled only for a flag that is ready and already in early access in
that environment: the feature exists and the readiness work is done, so the date is a
plan for something real, never a promise about unfinished work. The scheduler that
runs due launches reads ``launch_at``; this module only stores it.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

from sqlalchemy.orm import Session

from flagsvc.domain.errors import ConflictError
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.stages import Stage
from flagsvc.services import flag_states
from flagsvc.services.context import Change
from flagsvc.services.context import Precondition
from flagsvc.services.context import no_precondition
from flagsvc.services.flag_states import FlagStateDetail
from flagsvc.services.flag_states import Locked
from flagsvc.services.flag_states import Where


def schedule_launch(
    session: Session,
    change: Change,
    where: Where,
    launch_at: datetime,
    precondition: Precondition = no_precondition,
) -> FlagStateDetail:
    """Schedule (or move) the start of general rollout in one environment.

    :raise InvalidFieldError: ``launch_at`` is not in the future.
    :raise ConflictError: the flag is not ready, or not in early access there.
    """
    if launch_at <= change.at:
        raise InvalidFieldError("launch_at", "must be in the future")
    locked = flag_states.locate_checked(session, where, precondition)
    _check_launchable(locked)
    launch_at = launch_at.astimezone(UTC)
    if locked.state.launch_at != launch_at:
        before = {"launch_at": flag_states.iso(locked.state.launch_at)}
        locked.state.launch_at = launch_at
        after = {"launch_at": launch_at.isoformat()}
        flag_states.record(session, change, locked, "flag.launch_scheduled", before, after)
    return flag_states.detail(session, locked)


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
    before = {"launch_at": flag_states.iso(locked.state.launch_at)}
    locked.state.launch_at = None
    flag_states.record(
        session, change, locked, "flag.launch_cancelled", before, {"launch_at": None}
    )
    return flag_states.detail(session, locked)


def _check_launchable(locked: Locked) -> None:
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
