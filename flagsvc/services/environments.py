"""Environments: development, staging and production after ``init``; more by API.

Every flag has a state in every environment. A new flag gets one in each environment
and a new environment one for each flag; on PostgreSQL the two would miss each other
when they run at once (each reads the other's table before the other commits), so
both take :func:`hold_state_creation` first. ``flagsvc init`` repairs a database that
lost states anyway (:func:`repair_flag_states`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flagsvc.domain.actions import Action
from flagsvc.domain.errors import DuplicateKeyError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.stages import Stage
from flagsvc.services import audit
from flagsvc.services.context import Change
from flagsvc.storage.models import Environment
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagState

_STATE_CREATION_LOCK_ID = 0x73746174  # "stat": flags and environments, one at a time
DEFAULT_ENVIRONMENTS: tuple[tuple[str, str, bool], ...] = (
    ("development", "Development", False),
    ("staging", "Staging", False),
    ("production", "Production", True),
)


def get_environment(session: Session, key: str) -> Environment:
    """The environment called ``key``.

    :raise NotFoundError: there is none.
    """
    environment = session.scalar(select(Environment).where(Environment.key == key))
    if environment is None:
        raise NotFoundError("environment", key)
    return environment


def list_environments(session: Session) -> Sequence[Environment]:
    """Every environment in creation order."""
    return session.scalars(select(Environment).order_by(Environment.id)).all()


def create_environment(
    session: Session, change: Change, key: str, name: str, gated: bool
) -> Environment:
    """Create an environment and put every existing flag in it, dark (stage ``off``)."""
    hold_state_creation(session)
    if session.scalar(select(Environment.id).where(Environment.key == key)) is not None:
        raise DuplicateKeyError("environment", key)
    environment = Environment(key=key, name=name, gated=gated, created_at=change.at)
    session.add(environment)
    try:
        session.flush()
    except IntegrityError as error:  # a racing create of the same key (PostgreSQL): 409
        raise DuplicateKeyError("environment", key) from error
    for flag in session.scalars(select(Flag)):
        session.add(new_flag_state(flag, environment, change))
    after = environment_summary(environment)
    audit.record(
        session,
        change,
        Action.ENVIRONMENT_CREATED,
        audit.Subject("environment", key, environment=key),
        None,
        after,
    )
    return environment


def ensure_default_environments(session: Session, change: Change) -> list[str]:
    """Create the default environments that are missing; return the keys created."""
    existing = set(session.scalars(select(Environment.key)))
    created = []
    for key, name, gated in DEFAULT_ENVIRONMENTS:
        if key not in existing:
            create_environment(session, change, key, name, gated)
            created.append(key)
    return created


def hold_state_creation(session: Session) -> None:
    """Wait until no other transaction creates a flag or an environment, and hold them
    off until this one ends, so each sees every one the other committed.

    A PostgreSQL transaction advisory lock, taken before anything else the transaction
    locks (so it joins no deadlock); SQLite runs one write transaction at a time anyway.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _STATE_CREATION_LOCK_ID})


def repair_flag_states(session: Session, change: Change) -> list[tuple[str, str]]:
    """Give each flag a dark state in every environment it has none in; audit each one.

    :return: the (flag, environment) keys repaired, in flag then environment order.
    """
    hold_state_creation(session)
    stmt = (
        select(Flag, Environment)
        .join(Environment, true())
        .outerjoin(
            FlagState,
            and_(FlagState.flag_id == Flag.id, FlagState.environment_id == Environment.id),
        )
        .where(FlagState.id.is_(None))
        .order_by(Flag.id, Environment.id)
    )
    repaired = []
    for flag, environment in session.execute(stmt).all():
        state = new_flag_state(flag, environment, change)
        session.add(state)
        session.flush()
        subject = audit.Subject("flag", flag.key, flag_key=flag.key, environment=environment.key)
        after = {"stage": state.stage, "rollout_percent": 0, "killed": False}
        audit.record(session, change, Action.FLAG_STATE_REPAIRED, subject, None, after)
        repaired.append((flag.key, environment.key))
    return repaired


def new_flag_state(flag: Flag, environment: Environment, change: Change) -> FlagState:
    """A flag's state in an environment it has not been released in: dark."""
    return FlagState(
        flag=flag,
        environment=environment,
        stage=Stage.OFF.value,
        rollout_basis_points=0,
        killed=False,
        updated_at=change.at,
    )


def environment_summary(environment: Environment) -> dict[str, object]:
    """The audit's view of an environment."""
    return {"key": environment.key, "name": environment.name, "gated": environment.gated}
