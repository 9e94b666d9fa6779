"""The outbox: a notification is a row written in the transaction of its change.

``audit.record`` calls :func:`from_audit` for every event it appends, in the same
session: if the change commits, its notifications are committed with it and the worker
delivers them later however long the receiver is away; if it rolls back, they vanish
with it and nothing is ever sent about a change that did not happen. Events whose
action can never notify return before any query, and a webhook-free install pays one
indexed read per notifying change.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain.stages import Stage
from flagsvc.domain.webhooks import events
from flagsvc.domain.webhooks import messages
from flagsvc.domain.webhooks.events import EventType
from flagsvc.services import promise_board
from flagsvc.storage.models import AuditEvent
from flagsvc.storage.models import Flag
from flagsvc.storage.models import KeyResult
from flagsvc.storage.models import Objective
from flagsvc.storage.models import ValueStream
from flagsvc.storage.models import Webhook
from flagsvc.storage.models import WebhookDelivery

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


@dataclass(frozen=True, slots=True)
class Notification:
    """One event to tell subscribers about, before it is addressed to any webhook."""

    event: EventType
    at: datetime
    flag_key: str | None
    environment: str | None
    data: Mapping[str, Any]
    audit_seq: int | None = None


def from_audit(session: Session, event: AuditEvent) -> int:
    """Write the notification ``event`` causes, if any webhook wants it; return how many
    deliveries were written (0 for most events)."""
    kind = events.event_for(event.action, event.before, event.after)
    if kind is None:
        return 0
    hooks, flag = _subscribers(session, kind, event.flag_key)
    if not hooks:
        return 0
    data: dict[str, Any] = {
        "actor": event.actor,
        "audit_seq": event.seq,
        "before": event.before,
        "after": event.after,
    }
    if kind is EventType.READINESS_ITEM_DONE:
        data["item"] = event.entity_key.partition("/")[2]
    if kind is EventType.EARLY_ACCESS_ENTERED:
        data.update(_promise(session, event, event.before))
    found = Notification(
        kind, event.occurred_at, event.flag_key, event.environment, data, event.seq
    )
    return _address(session, found, hooks, flag)


def write(session: Session, found: Notification) -> int:
    """Address ``found`` to every active webhook that wants it; return how many."""
    hooks, flag = _subscribers(session, found.event, found.flag_key)
    return _address(session, found, hooks, flag) if hooks else 0


def _address(
    session: Session, found: Notification, hooks: Sequence[Webhook], flag: dict[str, Any]
) -> int:
    """One outbox row per webhook that wants ``found``, in one INSERT; each body is built
    once per format."""
    wanted = events.Subscription(found.event, flag.get("value_stream"), found.environment)
    chosen = [hook for hook in hooks if _filters(hook).wants(wanted)]
    if not chosen:
        return 0
    event_id = "evt_" + uuid.uuid4().hex
    data = {**flag, "environment": found.environment, **found.data}
    message = messages.envelope(event_id, found.event, found.at.isoformat(), data)
    bodies = {fmt: messages.body(fmt, message).decode() for fmt in {h.format for h in chosen}}
    session.execute(
        insert(WebhookDelivery),
        [
            {
                "webhook_id": hook.id,
                "event_id": event_id,
                "event_type": found.event.value,
                "audit_seq": found.audit_seq,
                "flag_key": found.flag_key,
                "environment": found.environment,
                "body": bodies[hook.format],
                "created_at": found.at,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": found.at,
            }
            for hook in chosen
        ],
    )
    return len(chosen)


def _subscribers(
    session: Session, kind: EventType, flag_key: str | None
) -> tuple[list[Webhook], dict[str, Any]]:
    """The active webhooks that take ``kind`` and the flag's name, kind of work and value
    stream (the filters and the message need them), in one round trip: the flag is read
    by scalar subqueries, which the database evaluates per webhook row, so an install
    without webhooks reads no flag."""
    if flag_key is None:
        found = session.scalars(select(Webhook).where(Webhook.active.is_(True))).all()
        return [hook for hook in found if kind.value in hook.events], {
            "flag": None, "value_stream": None
        }  # fmt: skip
    stream = (
        select(ValueStream.key)
        .join(Objective, Objective.value_stream_id == ValueStream.id)
        .join(KeyResult, KeyResult.objective_id == Objective.id)
        .join(Flag, Flag.key_result_id == KeyResult.id)
        .where(Flag.key == flag_key)
    )
    rows = session.execute(
        select(
            Webhook,
            select(Flag.name).where(Flag.key == flag_key).scalar_subquery(),
            select(Flag.flow_item).where(Flag.key == flag_key).scalar_subquery(),
            stream.scalar_subquery(),
        ).where(Webhook.active.is_(True))
    ).all()
    hooks = [row[0] for row in rows if kind.value in row[0].events]
    if not hooks or rows[0][1] is None:  # no such flag (any more)
        return hooks, {"flag": flag_key, "value_stream": None}
    _, name, flow_item, value_stream = rows[0]
    return hooks, {
        "flag": flag_key, "flag_name": name, "flow_item": flow_item, "value_stream": value_stream
    }  # fmt: skip


def _filters(hook: Webhook) -> events.Filters:
    return events.Filters(hook.events, hook.value_streams, hook.environments)


def _promise(session: Session, event: AuditEvent, before: Any) -> dict[str, Any]:
    """Whether the promise board lists the flag in the event's environment now, and since when.

    Only a flag coming back from general rollout can be: the board wants an unbroken
    stretch in early access or general of ``min_days`` (7), so a flag entering early
    access from anywhere else starts that stretch now (the board is not asked: this
    runs inside the write, and the board's evidence costs several queries).
    """
    came_from = before.get("stage") if isinstance(before, dict) else None
    if came_from != Stage.GENERAL or not event.flag_key or not event.environment:
        return {"safe_to_promise": False, "safe_since": None}
    query = promise_board.PromiseQuery(environment=event.environment)
    found = promise_board.promise_for(session, query, event.flag_key, event.occurred_at)
    return {
        "safe_to_promise": found is not None,
        "safe_since": None if found is None else found.safe_since.isoformat(),
    }
