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
from contextlib import AbstractContextManager
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

from flagsvc.domain import audit_chain
from flagsvc.domain.actions import Action
from flagsvc.observability import metrics
from flagsvc.services.context import Change
from flagsvc.services.webhooks import outbox
from flagsvc.storage.db import Database
from flagsvc.storage.models import AuditEvent

_AUDIT_LOCK_ID = 0x666C6167  # "flag": one advisory lock for the chain head
_PENDING = "flagsvc.audit_pending"
"""``session.info`` key: what this transaction recorded (:class:`_Pending`), acted on at commit."""
_KEYS = "flagsvc.audit_keys"
"""``session.info`` key: the :class:`AuditKeys` a write session seals events with."""
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


def iso(value: datetime | None) -> str | None:
    """A time as the audit stores it (ISO 8601, or None)."""
    return None if value is None else value.isoformat()


def record(
    session: Session, change: Change, action: Action, subject: Subject, before: Any, after: Any
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction."""
    _lock_chain_head(session)
    newest, keys = chain_head(session), audit_keys(session)
    seq, prev_hash = newest.seq + 1, newest.hash
    event = _event(seq, prev_hash, change, action, subject)
    event.before, event.after, event.key_id = before, after, keys.current_id
    event.hash = audit_chain.event_hash(prev_hash, chained_content(event), keys.current)
    session.add(event)
    session.flush()
    outbox.from_audit(session, event)  # its notifications commit or roll back with it
    pending = session.info.setdefault(_PENDING, _Pending())
    pending.head = seq
    pending.actions.append(action)
    return event


def sealing(keys: audit_chain.AuditKeys) -> dict[str, object]:
    """The ``Session.info`` write sessions need to seal events with ``keys``
    (``Database.tag_writes``)."""
    return {_KEYS: keys}


def audit_keys(session: Session) -> audit_chain.AuditKeys:
    """The keys this session seals events with (none: plain SHA-256)."""
    keys = session.info.get(_KEYS)
    return keys if isinstance(keys, audit_chain.AuditKeys) else audit_chain.NO_KEYS


_HEAD = (
    select(AuditEvent.seq, AuditEvent.hash, AuditEvent.key_id)
    .order_by(AuditEvent.seq.desc())
    .limit(1)
)
"""The newest event (every audited change reads it, under ``_LOCK_HEAD`` on PostgreSQL):
built once, like the lock, instead of per change."""
_LOCK_HEAD = text("SELECT pg_advisory_xact_lock(:id)").bindparams(
    bindparam("id", _AUDIT_LOCK_ID, type_=BigInteger)  # the function's own argument type
)


def chain_head(session: Session) -> audit_chain.ChainPoint:
    """The newest event: its ``seq`` and hash (``seq`` 0 when the log is empty)."""
    row = session.execute(_HEAD).first()
    return (
        audit_chain.ChainPoint(row.seq, row.hash, row.key_id is not None)
        if row
        else audit_chain.START
    )


def seal_chain(session: Session, change: Change) -> bool:
    """Record ``audit.sealed`` unless the newest event is already sealed with the current key.

    Run when a key is set or changed (``flagsvc init``): from then on the chain ends in
    an event only the key could have made, so a rewrite of the whole log is caught.
    """
    keys = audit_keys(session)
    _lock_chain_head(session)
    newest = session.scalar(select(AuditEvent.key_id).order_by(AuditEvent.seq.desc()).limit(1))
    if keys.current_id is None or newest == keys.current_id:
        return False
    subject = Subject("audit", "chain")
    record(
        session,
        change,
        Action.AUDIT_SEALED,
        subject,
        {"key_id": newest},
        {"key_id": keys.current_id},
    )
    return True


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


def on_commit(database: Database, publish: Callable[[int], None]) -> None:
    """When a write transaction that recorded events commits: count them and
    ``publish`` its newest ``seq`` (the head tracker and the change broker hear of it).

    Done on commit, not in ``record``: a rolled-back transaction wrote nothing, so it
    neither counts in ``flagsvc_audit_events_total`` nor announces a change.
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

    database.on_write_commit(committed, rolled_back)


def chained_content(event: AuditEvent) -> dict[str, Any]:
    """The fields the hash covers: everything but the hashes themselves.

    ``key_id`` only when set, so events written before keys existed hash as they did.
    """
    content = {
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
    if event.key_id is not None:
        content["key_id"] = event.key_id
    return content


def _lock_chain_head(session: Session) -> None:
    is_postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
    if is_postgres and not session.info.get("audit_locked"):
        session.execute(_LOCK_HEAD)
        session.info["audit_locked"] = True


def verify(
    session: Session,
    keys: audit_chain.AuditKeys = audit_chain.NO_KEYS,
    start: audit_chain.ChainPoint = audit_chain.START,
    limit: int | None = None,
) -> audit_chain.ChainReport:
    """Recompute the chain after ``start`` (at most ``limit`` events); name the first break."""
    return audit_chain.verify(_chained_events(session, start.seq), keys, start, limit)


def _chained_events(session: Session, after: int = 0) -> Iterator[audit_chain.ChainedEvent]:
    """The events after ``after`` as the verifier reads them, fetched in batches."""
    while True:
        batch = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.seq > after)
            .order_by(AuditEvent.seq)
            .limit(_VERIFY_BATCH)
        ).all()
        for event in batch:
            yield audit_chain.ChainedEvent(
                event.seq, event.prev_hash, event.hash, chained_content(event), event.key_id
            )
        if len(batch) < _VERIFY_BATCH:
            return
        after = batch[-1].seq


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters for the audit log; ``after_seq`` is the cursor position.

    ``newest_first`` reads the chain backwards (from ``before_seq``, if given): the
    audit page opens on the latest events and pages back in time.
    """

    flag_key: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int = 0
    before_seq: int | None = None
    newest_first: bool = False


EXPORT_PAGE = 500
"""Events an export reads per session (about 1 MiB of rows at most)."""


def query(session: Session, filters: AuditQuery, limit: int) -> Sequence[AuditEvent]:
    """Events matching ``filters`` in chain order, at most ``limit`` of them."""
    return session.scalars(_filtered(filters).limit(limit)).all()


def stream(
    sessions: Callable[[], AbstractContextManager[Session]],
    filters: AuditQuery,
    batch: int = EXPORT_PAGE,
) -> Iterator[AuditEvent]:
    """Every matching event, a page at a time (exports of any size in flat memory).

    Each page is read in a session of its own, closed before its events are handed
    out: the caller writes them to a client that may read slowly, and a connection
    held meanwhile is one the pool cannot lend (enough slow readers of an export would
    leave none for anyone else). The events come out detached, their columns loaded.
    Pages follow ``seq``, so events appended meanwhile are exported too if they match,
    and none is repeated or skipped.
    """
    after = filters.after_seq
    while True:
        with sessions() as session:
            rows = query(session, _with_cursor(filters, after), batch)
            session.expunge_all()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].seq


def _with_cursor(filters: AuditQuery, after_seq: int) -> AuditQuery:
    return replace(filters, after_seq=after_seq)


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
    if filters.before_seq is not None:
        stmt = stmt.where(AuditEvent.seq < filters.before_seq)
    return stmt.order_by(AuditEvent.seq.desc() if filters.newest_first else AuditEvent.seq)
