"""A flag's release timeline, and the audit reads every timing view is built on.

The audit is the only source: these queries load the few event kinds that matter
(``flow.TIMELINE_ACTIONS``), reduced to :class:`flow.FlowEvent` values, and the pure
functions in ``flagsvc.domain.flow`` do the rest, so a timeline can never disagree
with the audit it was read from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import union
from sqlalchemy.orm import Session

from flagsvc.domain import flow
from flagsvc.domain.actions import Action
from flagsvc.services import flags
from flagsvc.storage.models import AuditEvent
from flagsvc.storage.models import Environment
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagState


@dataclass(frozen=True, slots=True)
class FlagTimeline:
    """A flag's milestones per environment, all read from its audit events."""

    flag: str
    created: datetime
    ready_first: datetime | None
    ready_latest: datetime | None
    ready_now: bool
    environments: dict[str, flow.EnvironmentTimeline]


def flag_timeline(session: Session, flag_key: str) -> FlagTimeline:
    """The flag's timeline in every environment it has a state in.

    :raise NotFoundError: there is no such flag.
    """
    flag = flags.get_flag(session, flag_key)
    stmt = _event_columns().where(
        AuditEvent.flag_key == flag.key, AuditEvent.action.in_(flow.TIMELINE_ACTIONS)
    )
    events = [to_event(row) for row in session.execute(stmt.order_by(AuditEvent.seq))]
    created = flow.created_at(events) or flag.created_at
    ready = [event.at for event in events if event.action == Action.FLAG_READY]
    ready_now = any(i.end is None for i in flow.ready_intervals(events))
    return FlagTimeline(
        flag.key,
        created,
        ready[0] if ready else None,
        ready[-1] if ready else None,
        ready_now,
        {
            key: flow.environment_timeline(events, key, created)
            for key in _environments_of(session, flag.id)
        },
    )


def _environments_of(session: Session, flag_id: int) -> Sequence[str]:
    """The environments the flag has a state in.

    Each timeline starts at the flag's creation, also in an environment added later:
    the flag was dark there before it existed, which is all ``off`` says.
    """
    stmt = (
        select(Environment.key)
        .join(FlagState, FlagState.environment_id == Environment.id)
        .where(FlagState.flag_id == flag_id)
        .order_by(Environment.id)
    )
    return session.scalars(stmt).all()


@dataclass(frozen=True, slots=True)
class FlowHistory:
    """A flag's flow item and its flow events, in chain order."""

    flow_item: str
    events: list[flow.FlowEvent]


def flow_events(
    session: Session, environment: str, flag_keys: Select[Any], until: datetime | None
) -> dict[str, FlowHistory]:
    """The flow item and flow events of each flag whose key ``flag_keys`` selects.

    Flag-wide events (created, readiness) and those in ``environment`` only; none at
    or after ``until`` when it is given. One query, read as plain tuples: a report
    may read tens of thousands of rows.
    """
    histories: dict[str, FlowHistory] = {}
    rows = session.connection().execute(_flow_rows(environment, flag_keys, until))
    for seq, at, action, key, env, stage, percent, item in rows:
        history = histories.get(key)
        if history is None:
            history = histories[key] = FlowHistory(item, [])
        history.events.append(flow.FlowEvent(seq, at, action, key, env, stage, percent))
    return histories


def _flow_rows(environment: str, flag_keys: Select[Any], until: datetime | None) -> Select[Any]:
    stmt = (
        select(*_flow_columns())
        .join(Flag, Flag.key == AuditEvent.flag_key)
        .where(
            AuditEvent.action.in_(flow.FLOW_ACTIONS),
            AuditEvent.flag_key.in_(flag_keys),
            (AuditEvent.environment == environment) | AuditEvent.environment.is_(None),
        )
    )
    if until is not None:
        stmt = stmt.where(AuditEvent.occurred_at < until)
    return stmt.order_by(AuditEvent.seq)


def _flow_columns() -> tuple[Any, ...]:
    """What a :class:`flow.FlowEvent` needs, plus the flag's flow item."""
    after = AuditEvent.after
    return (
        AuditEvent.seq,
        AuditEvent.occurred_at,
        AuditEvent.action,
        AuditEvent.flag_key,
        AuditEvent.environment,
        after["stage"].as_string(),
        after["rollout_percent"].as_float(),
        Flag.flow_item,
    )


def active_flag_keys(environment: str, since: datetime, until: datetime | None) -> Select[Any]:
    """Keys of the flags that can be in flight in ``environment`` at some time of the window.

    A flag in flight at any moment of ``[since, until)`` either changed stage inside
    the window or was in early access or general when it began (its last stage change
    before ``since`` left it there). Reports load only these flags' histories instead
    of every flag's; the domain then decides exactly what is in scope. Both halves
    read only the ``ix_audit_events_flow`` index (no table rows) on PostgreSQL.
    """
    changed = (
        AuditEvent.action == Action.FLAG_STAGE_CHANGED,
        AuditEvent.environment == environment,
    )
    moved = select(AuditEvent.flag_key).where(*changed, AuditEvent.occurred_at >= since)
    if until is not None:
        moved = moved.where(AuditEvent.occurred_at < until)
    newest_first = AuditEvent.seq.desc()
    ranked = (
        select(
            AuditEvent.flag_key,
            AuditEvent.after["stage"].as_string().label("stage"),
            func.row_number()
            .over(partition_by=AuditEvent.flag_key, order_by=newest_first)
            .label("n"),
        )
        .where(*changed, AuditEvent.occurred_at < since)
        .subquery()
    )
    in_flight = select(ranked.c.flag_key).where(
        ranked.c.n == 1, ranked.c.stage.in_(sorted(flow.IN_FLIGHT))
    )
    return union(moved, in_flight).subquery().select()


def _event_columns() -> Select[Any]:
    """The columns a :class:`flow.FlowEvent` needs, JSON fields extracted by the database."""
    after = AuditEvent.after
    return select(
        AuditEvent.seq,
        AuditEvent.occurred_at,
        AuditEvent.action,
        AuditEvent.flag_key,
        AuditEvent.environment,
        AuditEvent.actor,
        after["stage"].as_string().label("stage"),
        after["rollout_percent"].as_float().label("rollout_percent"),
        after["planned_at"].as_string().label("planned_at"),
    )


def to_event(row: Any) -> flow.FlowEvent:
    """A database row of :func:`_event_columns` as a domain event."""
    return flow.FlowEvent(
        seq=row.seq,
        at=row.occurred_at,
        action=row.action,
        flag_key=row.flag_key,
        environment=row.environment,
        stage=row.stage,
        rollout_percent=row.rollout_percent,
        actor=row.actor,
        planned_at=_parse_time(row.planned_at),
    )


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
