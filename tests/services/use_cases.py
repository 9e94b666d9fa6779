"""Calling services the way the API does, without HTTP: a unit of work per call."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from flagsvc.domain.roles import Role
from flagsvc.domain.stages import Stage
from flagsvc.services import flag_states
from flagsvc.services import flags
from flagsvc.services.context import Change
from flagsvc.storage.db import Database
from flagsvc.storage.models import AuditEvent

ChangeBy = Callable[[Role], Change]


def new_flag(database: Database, change: Change, key: str, key_result_id: int) -> None:
    fields = {"key": key, "name": key.title(), "flow_item": "feature"}
    with database.write() as session:
        flags.create_flag(session, change, {**fields, "key_result_id": key_result_id})


def move(
    database: Database, change: Change, key: str, environment: str, stage: str, percent: Any = None
) -> flag_states.FlagStateDetail:
    where = flag_states.Where(key, environment)
    ramp = None if percent is None else Decimal(percent)
    with database.write() as session:
        return flag_states.move_stage(session, change, where, Stage(stage), ramp)


def actions(database: Database, flag_key: str | None = None) -> list[str]:
    """The audit's actions in order (about one flag, if given)."""
    query = select(AuditEvent.action).order_by(AuditEvent.seq)
    if flag_key is not None:
        query = query.where(AuditEvent.flag_key == flag_key)
    with database.read() as session:
        return list(session.scalars(query))
