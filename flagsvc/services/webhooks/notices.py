"""Notifications no change causes: a flag turning stale, a feature becoming safe to promise.

Time makes these true, not a write, so no transaction could carry them; the worker
looks for them every few minutes and writes each occurrence once: a ``webhook_notices``
row (unique per event, flag, environment and the moment it became true) and its
deliveries go in one transaction, so a notice is never recorded without being sent.
One worker looks at a time (a transaction advisory lock on PostgreSQL; SQLite write
transactions are serialised). Nothing is looked for while no webhook wants these
events, so a webhook that subscribes later hears of the flags stale at that moment.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.webhooks.events import EventType
from flagsvc.services import promise_board
from flagsvc.services import stale
from flagsvc.services.webhooks import outbox
from flagsvc.storage.db import Database
from flagsvc.storage.models import Webhook
from flagsvc.storage.models import WebhookNotice

STALE_DAYS = 30
"""Days released everywhere, or unevaluated, before a flag is stale (the report's default)."""
_LOCK_ID = 0x686F6F6B  # "hook": one worker looks for notices at a time


def find(database: Database, now: datetime) -> int:
    """Write the notices that became true since the last look; return how many."""
    with database.write() as session:
        wanted = _wanted(session)
        if not wanted or not _lock(session):
            return 0
        written = 0
        if EventType.STALE in wanted:
            written += _stale(session, now)
        if EventType.SAFE_TO_PROMISE in wanted:
            written += _promised(session, now)
        return written


def _wanted(session: Session) -> set[str]:
    lists = session.scalars(select(Webhook.events).where(Webhook.active.is_(True)))
    return {event for events in lists for event in events}


def _lock(session: Session) -> bool:
    if session.bind is None or session.bind.dialect.name != "postgresql":
        return True
    got = session.scalar(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    return bool(got)


def _stale(session: Session, now: datetime) -> int:
    written = 0
    for found in stale.stale_flags(session, now, STALE_DAYS, STALE_DAYS):
        for reason in found.reasons:
            data = {
                "reason": reason.reason.replace("_", " "),
                "since": reason.since.isoformat(),
                "days": reason.days,
            }
            notice = outbox.Notification(EventType.STALE, now, found.flag, reason.environment, data)
            written += _once(session, notice, reason.since)
    return written


def _promised(session: Session, now: datetime) -> int:
    query = promise_board.PromiseQuery()
    try:
        board = promise_board.board(session, query, now)
    except NotFoundError:  # no such environment: nothing to promise there
        return 0
    written = 0
    for item in board.items:
        data = {
            "safe_to_promise": True,
            "safe_since": item.safe_since.isoformat(),
            "days_in_early_access": item.days_in_early_access,
            "early_adopters": item.early_adopters,
        }
        notice = outbox.Notification(
            EventType.SAFE_TO_PROMISE, now, item.flag, board.environment, data
        )
        written += _once(session, notice, item.safe_since)
    return written


def _once(session: Session, notice: outbox.Notification, since: datetime) -> int:
    """Record ``notice`` and address it, unless this occurrence was recorded before."""
    key = (notice.event.value, notice.flag_key or "", notice.environment or "", since.isoformat())
    seen = session.scalar(
        select(WebhookNotice.id).where(
            WebhookNotice.event_type == key[0],
            WebhookNotice.flag_key == key[1],
            WebhookNotice.environment == key[2],
            WebhookNotice.since == key[3],
        )
    )
    if seen is not None:
        return 0
    session.add(
        WebhookNotice(
            event_type=key[0],
            flag_key=key[1],
            environment=key[2],
            since=key[3],
            created_at=notice.at,
        )
    )
    outbox.write(session, notice)
    return 1
