"""The append-only, hash-chained audit log: written in the caller's transaction.

Appends are serialised so the chain stays linear: on PostgreSQL by a transaction
advisory lock, on SQLite by the ``BEGIN IMMEDIATE`` every write transaction takes.
``seq`` is the primary key, so even a bug elsewhere could not fork the chain.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

from flagsvc.domain import audit_chain
from flagsvc.domain.actions import Action
from flagsvc.observability import metrics
from flagsvc.services.context import Change
from flagsvc.storage.models import AuditEvent

_AUDIT_LOCK_ID = 0x666C6167  # "flag": one advisory lock for the chain head
_PENDING = "flagsvc.audit_pending"
"""``session.info`` key: what this transaction recorded (:class:`_Pending`), acted on at commit."""
_VERIFY_BATCH = 5_000
log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    """The newest ``seq`` and the actions of the events one transaction recorded."""

    head: int = 0
    actions: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Subject:
    """What an audit event is about."""

    entity_type: str
    entity_key: str
    flag_key: str | None = None
    environment: str | None = None


def record(
    session: Session, change: Change, action: Action, subject: Subject, before: Any, after: Any
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction."""
    _lock_chain_head(session)
    head = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (head[0] + 1, head[1]) if head else (1, audit_chain.GENESIS_HASH)
    event = _event(seq, prev_hash, change, action, subject)
    event.before, event.after = before, after
    event.hash = audit_chain.event_hash(prev_hash, chained_content(event))
    session.add(event)
    session.flush()
    pending = session.info.setdefault(_PENDING, _Pending())
    pending.head = seq
    pending.actions.append(action)
    return event


def _event(
    seq: int, prev_hash: str, change: Change, action: Action, subject: Subject
) -> AuditEvent:
    """The row for one event, before its content is hashed."""
    return AuditEvent(
        seq=seq,
        occurred_at=change.at,
        actor=change.actor.name,
        actor_role=change.actor.role_name,
        action=action,
        entity_type=subject.entity_type,
        entity_key=subject.entity_key,
        flag_key=subject.flag_key,
        environment=subject.environment,
        request_id=change.request_id,
        prev_hash=prev_hash,
    )


def on_commit(sessions: Any, publish: Callable[[int], None]) -> None:
    """When a transaction of ``sessions`` that recorded events commits: count them and
    ``publish`` its newest ``seq`` (the change broker wakes the streams).

    Done on commit, not in ``record``: a rolled-back transaction wrote nothing, so it
    neither counts in ``flagsvc_audit_events_total`` nor announces a change. ``sessions``
    is the write ``sessionmaker`` (typed loosely: SQLAlchemy's event API is untyped).
    """

    def committed(session: Any) -> None:
        pending: _Pending | None = session.info.pop(_PENDING, None)
        if pending is None:
            return
        for action in pending.actions:
            metrics.AUDIT_EVENTS.labels(action).inc()
        try:
            publish(pending.head)
        except Exception:  # a notification must never fail a committed write
            log.exception("could not publish audit head %s", pending.head)

    def rolled_back(session: Any) -> None:
        session.info.pop(_PENDING, None)

    sa_event.listen(sessions, "after_commit", committed)
    sa_event.listen(sessions, "after_rollback", rolled_back)


def chained_content(event: AuditEvent) -> dict[str, Any]:
    """The fields the hash covers: everything but the hashes themselves."""
    return {
        "seq": event.seq,
        "occurred_at": event.occurred_at.isoformat(),
        "actor": event.actor,
        "actor_role": event.actor_role,
        "action": event.action,
        "entity_type": event.entity_type,
        "entity_key": event.entity_key,
        "flag_key": event.flag_key,
        "environment": event.environment,
        "before": event.before,
        "after": event.after,
        "request_id": event.request_id,
    }


def _lock_chain_head(session: Session) -> None:
    is_postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
    if is_postgres and not session.info.get("audit_locked"):
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _AUDIT_LOCK_ID})
        session.info["audit_locked"] = True


def verify(session: Session) -> audit_chain.ChainReport:
    """Recompute the whole chain and name the first broken link."""
    return audit_chain.verify(_chained_events(session))


def _chained_events(session: Session) -> Iterator[audit_chain.ChainedEvent]:
    after = 0
    while True:
        batch = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.seq > after)
            .order_by(AuditEvent.seq)
            .limit(_VERIFY_BATCH)
        ).all()
        for event in batch:
            yield audit_chain.ChainedEvent(
                event.seq, event.prev_hash, event.hash, chained_content(event)
            )
        if len(batch) < _VERIFY_BATCH:
            return
        after = batch[-1].seq


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters for the audit log; ``after_seq`` is the cursor position."""

    flag_key: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int = 0


def query(session: Session, filters: AuditQuery, limit: int) -> Sequence[AuditEvent]:
    """Events matching ``filters`` in chain order, at most ``limit`` of them."""
    return session.scalars(_filtered(filters).limit(limit)).all()


def stream(session: Session, filters: AuditQuery, batch: int = 1_000) -> Iterator[AuditEvent]:
    """Every matching event, fetched in batches (exports of any size in flat memory)."""
    after = filters.after_seq
    while True:
        rows = query(session, _with_cursor(filters, after), batch)
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].seq


def _with_cursor(filters: AuditQuery, after_seq: int) -> AuditQuery:
    return AuditQuery(
        filters.flag_key, filters.actor, filters.action, filters.since, filters.until, after_seq
    )


def _filtered(filters: AuditQuery) -> Select[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.seq > filters.after_seq)
    if filters.flag_key:
        stmt = stmt.where(AuditEvent.flag_key == filters.flag_key)
    if filters.actor:
        stmt = stmt.where(AuditEvent.actor == filters.actor)
    if filters.action:
        stmt = stmt.where(AuditEvent.action == filters.action)
    if filters.since:
        stmt = stmt.where(AuditEvent.occurred_at >= filters.since)
    if filters.until:
        stmt = stmt.where(AuditEvent.occurred_at < filters.until)
    return stmt.order_by(AuditEvent.seq)
