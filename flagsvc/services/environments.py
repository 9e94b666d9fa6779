"""Environments: development, staging and production after ``init``; more by API."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
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
    if session.scalar(select(Environment.id).where(Environment.key == key)) is not None:
        raise DuplicateKeyError("environment", key)
    environment = Environment(key=key, name=name, gated=gated, created_at=change.at)
    session.add(environment)
    session.flush()
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
