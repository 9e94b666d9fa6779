"""Stale flags: candidates for removal from product code.

Two signals, either enough:

- *released everywhere*: the flag is ``released`` (or already ``retired``) in every
  environment, at least one of them released, and has been for at least N days
  (counted from the latest of those stage entries, read from the audit);
- *not evaluated*: in some environment where the flag is on for someone (early access,
  general or released, kill switch off), no SDK has reported evaluating it for at
  least N days (from the SDK metrics), counted from the later of its last evaluation
  and the moment it entered its current stage there (a flag switched on yesterday is
  not stale for lack of traffic).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain import flow
from flagsvc.domain.actions import Action
from flagsvc.domain.stages import Stage
from flagsvc.storage.models import AuditEvent
from flagsvc.storage.models import Environment
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagEvaluation
from flagsvc.storage.models import FlagState

ON_FOR_SOMEONE = frozenset({Stage.EARLY_ACCESS, Stage.GENERAL, Stage.RELEASED})
DONE = frozenset({Stage.RELEASED, Stage.RETIRED})


@dataclass(frozen=True, slots=True)
class StaleReason:
    """Why a flag looks ready for removal from code."""

    reason: str
    since: datetime
    days: float
    environment: str | None = None
    last_evaluated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StaleFlag:
    """A flag with the reasons it looks stale."""

    flag: str
    name: str
    flow_item: str
    reasons: list[StaleReason]


@dataclass(frozen=True, slots=True)
class _State:
    flag_id: int
    environment: str
    stage: str
    killed: bool
    entered: datetime
    last_evaluated_at: datetime | None


def stale_flags(
    session: Session, now: datetime, released_days: int, unevaluated_days: int
) -> list[StaleFlag]:
    """Flags stale by either signal, in key order, each with its reasons and dates."""
    rows = session.execute(select(Flag.id, Flag.key, Flag.name, Flag.flow_item).order_by(Flag.key))
    flags = rows.all()
    by_flag: dict[int, list[_State]] = {}
    for state in _states(session, {row.id: row.key for row in flags}):
        by_flag.setdefault(state.flag_id, []).append(state)
    found = []
    for row in flags:
        mine = by_flag.get(row.id, [])
        reasons = [
            *_released_everywhere(mine, now, released_days),
            *_not_evaluated(mine, now, unevaluated_days),
        ]
        if reasons:
            found.append(StaleFlag(row.key, row.name, row.flow_item, reasons))
    return found


def _released_everywhere(
    states: list[_State], now: datetime, threshold: int
) -> Iterable[StaleReason]:
    stages = {state.stage for state in states}
    if not states or not stages <= DONE or Stage.RELEASED not in stages:
        return []
    since = max(state.entered for state in states)
    if now - since < timedelta(days=threshold):
        return []
    return [StaleReason("released_everywhere", since, flow.days((now - since).total_seconds()))]


def _not_evaluated(states: list[_State], now: datetime, threshold: int) -> Iterable[StaleReason]:
    reasons = []
    for state in states:
        if state.stage not in ON_FOR_SOMEONE or state.killed:
            continue
        since = max(state.entered, state.last_evaluated_at or state.entered)
        if now - since >= timedelta(days=threshold):
            quiet = flow.days((now - since).total_seconds())
            reasons.append(
                StaleReason(
                    "not_evaluated", since, quiet, state.environment, state.last_evaluated_at
                )
            )
    return reasons


def _states(session: Session, keys: Mapping[int, str]) -> list[_State]:
    """Every flag state with when it entered its stage and when it was last evaluated."""
    stmt = (
        select(FlagState.flag_id, FlagState.environment_id, Environment.key, FlagState.stage)
        .add_columns(FlagState.killed, Flag.created_at)
        .join(Environment, Environment.id == FlagState.environment_id)
        .join(Flag, Flag.id == FlagState.flag_id)
    )
    entered = _stage_entries(session)
    evaluated = _last_evaluations(session)
    return [
        _State(
            flag_id,
            env_key,
            stage,
            killed,
            max(entered.get((keys[flag_id], env_key), created), created),
            evaluated.get((flag_id, env_id)),
        )
        for flag_id, env_id, env_key, stage, killed, created in session.execute(stmt)
    ]


def _stage_entries(session: Session) -> dict[tuple[str | None, str | None], datetime]:
    """The latest stage change per (flag key, environment), from the audit."""
    stmt = (
        select(AuditEvent.flag_key, AuditEvent.environment, func.max(AuditEvent.occurred_at))
        .where(AuditEvent.action == Action.FLAG_STAGE_CHANGED)
        .group_by(AuditEvent.flag_key, AuditEvent.environment)
    )
    return {(key, env): at for key, env, at in session.execute(stmt)}


def _last_evaluations(session: Session) -> dict[tuple[int, int], datetime]:
    stmt = select(
        FlagEvaluation.flag_id, FlagEvaluation.environment_id, FlagEvaluation.last_evaluated_at
    )
    return {(flag_id, env_id): at for flag_id, env_id, at in session.execute(stmt)}
