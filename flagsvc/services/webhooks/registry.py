"""The webhooks (admin-only, every change audited) and their delivery log.

The signing secret is returned once, by :func:`create_webhook` (or when replaced by
:func:`update_webhook`), and never read back: the audit records that it changed, never
what it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain.actions import Action
from flagsvc.domain.errors import ConflictError
from flagsvc.domain.errors import DuplicateKeyError
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.webhooks import addresses
from flagsvc.domain.webhooks import signing
from flagsvc.domain.webhooks.events import ALL_EVENTS
from flagsvc.services import audit
from flagsvc.services.context import Change
from flagsvc.services.context import Precondition
from flagsvc.services.context import etag_data
from flagsvc.services.context import no_precondition
from flagsvc.services.webhooks.outbox import PENDING
from flagsvc.storage.models import Environment
from flagsvc.storage.models import ValueStream
from flagsvc.storage.models import Webhook
from flagsvc.storage.models import WebhookAttempt
from flagsvc.storage.models import WebhookDelivery

MAX_WEBHOOKS = 100
EDITABLE = ("name", "url", "events", "value_streams", "environments", "format", "active")


@dataclass(frozen=True, slots=True)
class Created:
    """A webhook just made (or re-keyed) and its secret, shown in this answer only."""

    webhook: Webhook
    secret: str


def list_webhooks(session: Session) -> Sequence[Webhook]:
    """Every webhook, oldest first."""
    return session.scalars(select(Webhook).order_by(Webhook.id).limit(MAX_WEBHOOKS)).all()


def get_webhook(session: Session, webhook_id: int, lock: bool = False) -> Webhook:
    """The webhook ``webhook_id``.

    :raise NotFoundError: there is none.
    """
    stmt = select(Webhook).where(Webhook.id == webhook_id)
    found = session.scalar(stmt.with_for_update() if lock else stmt)
    if found is None:
        raise NotFoundError("webhook", webhook_id)
    return found


def webhook_etag(hook: Webhook) -> dict[str, object]:
    """What the webhook's ETag is computed from."""
    return etag_data("webhook", hook.id, hook.version)


def create_webhook(
    session: Session, change: Change, fields: Mapping[str, Any], allow_private: bool
) -> Created:
    """Create a webhook, audited; its secret is the given one or a new one.

    :raise InvalidFieldError: a URL it can never send to, an unknown event, value
        stream or environment.
    :raise DuplicateKeyError: the name is taken.
    """
    if len(list_webhooks(session)) >= MAX_WEBHOOKS:
        raise InvalidFieldError("name", f"at most {MAX_WEBHOOKS} webhooks")
    _check(session, fields, allow_private)
    _unique_name(session, fields["name"])
    secret = fields.get("secret") or signing.new_secret()
    hook = Webhook(
        name=fields["name"],
        url=fields["url"],
        events=list(fields.get("events") or ALL_EVENTS),
        value_streams=list(fields.get("value_streams") or []),
        environments=list(fields.get("environments") or []),
        format=fields.get("format", "json"),
        secret=secret,
        active=fields.get("active", True),
        created_at=change.at,
    )
    session.add(hook)
    session.flush()
    audit.record(session, change, Action.WEBHOOK_CREATED, _subject(hook), None, summary(hook))
    return Created(hook, secret)


def update_webhook(
    session: Session,
    change: Change,
    webhook_id: int,
    fields: Mapping[str, Any],
    allow_private: bool,
    precondition: Precondition = no_precondition,
) -> Created | Webhook:
    """Change a webhook's fields, audited; ``rotate_secret`` or ``secret`` replaces the
    secret (and the answer carries the new one, once). No change writes nothing.

    :raise InvalidFieldError, DuplicateKeyError: as :func:`create_webhook`.
    """
    hook = get_webhook(session, webhook_id, lock=True)
    precondition(webhook_etag(hook))
    _check(session, fields, allow_private)
    if "name" in fields and fields["name"] != hook.name:
        _unique_name(session, fields["name"])
    before = summary(hook)
    for name in EDITABLE:
        if name in fields:
            setattr(
                hook, name, list(fields[name]) if isinstance(fields[name], list) else fields[name]
            )
    secret = fields.get("secret") or (signing.new_secret() if fields.get("rotate_secret") else None)
    after = summary(hook)
    if secret is not None:
        hook.secret = secret
        after["secret_replaced"] = True
    if after == before:
        return hook
    session.flush()
    audit.record(session, change, Action.WEBHOOK_UPDATED, _subject(hook), before, after)
    return hook if secret is None else Created(hook, secret)


def delete_webhook(
    session: Session, change: Change, webhook_id: int, precondition: Precondition = no_precondition
) -> str:
    """Delete a webhook and its delivery log (pending deliveries are never sent), audited;
    its name, for the answer that says so."""
    hook = get_webhook(session, webhook_id, lock=True)
    precondition(webhook_etag(hook))
    before = summary(hook)
    mine = select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == hook.id)
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(mine)))
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id))
    audit.record(session, change, Action.WEBHOOK_DELETED, _subject(hook), before, None)
    session.delete(hook)
    return hook.name


def redeliver(
    session: Session, change: Change, webhook_id: int, delivery_id: int
) -> WebhookDelivery:
    """Send one delivery again now, audited: the same event id and the same bytes, so a
    receiver that already has it drops it as a duplicate.

    A pending delivery skips the rest of its wait; a delivered or dead one gets one more
    attempt (and, while the event is younger than the retry window, its retries). Its
    earlier attempts stay in the log.

    :raise NotFoundError: no such webhook, or no such delivery of it.
    :raise ConflictError: the webhook is paused, or a worker is sending it right now.
    """
    hook = get_webhook(session, webhook_id)
    stmt = select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook_id
    )
    delivery = session.scalar(stmt.with_for_update())
    if delivery is None:
        raise NotFoundError("delivery", delivery_id)
    if not hook.active:
        raise ConflictError(f"webhook {hook.name!r} is paused: resume it to send deliveries")
    if delivery.leased_until is not None and delivery.leased_until > change.at:
        raise ConflictError(f"delivery {delivery_id} is being sent right now; try again shortly")
    before = {"event_id": delivery.event_id, "status": delivery.status}
    delivery.status, delivery.next_attempt_at, delivery.delivered_at = PENDING, change.at, None
    after = {"event_id": delivery.event_id, "status": PENDING}
    audit.record(session, change, Action.WEBHOOK_REDELIVERED, _subject(hook), before, after)
    return delivery


def summary(hook: Webhook) -> dict[str, Any]:
    """A webhook as the audit records it: every field but the secret."""
    return {
        "name": hook.name,
        "url": redacted_url(hook.url),
        "events": list(hook.events),
        "value_streams": list(hook.value_streams),
        "environments": list(hook.environments),
        "format": hook.format,
        "active": hook.active,
    }


def redacted_url(url: str) -> str:
    """The URL as the audit shows it: the origin, the rest replaced by a fingerprint.

    The audit is readable by every role, and receivers such as Slack carry their token
    in the URL's path; the fingerprint still shows when the URL changed.
    """
    parts = urlsplit(url)
    fingerprint = hashlib.sha256(url.encode()).hexdigest()[:12]
    return f"{parts.scheme}://{parts.netloc}/… (sha256 {fingerprint})"


def deliveries(
    session: Session, webhook_id: int, limit: int, before_id: int | None = None
) -> Sequence[WebhookDelivery]:
    """The webhook's deliveries, newest first (``before_id``: the page after that one).

    :raise NotFoundError: there is no such webhook.
    """
    get_webhook(session, webhook_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if before_id is not None:
        stmt = stmt.where(WebhookDelivery.id < before_id)
    return session.scalars(stmt.order_by(WebhookDelivery.id.desc()).limit(limit)).all()


def attempts_of(session: Session, delivery_ids: Sequence[int]) -> dict[int, list[WebhookAttempt]]:
    """The attempts of each delivery, oldest first."""
    found: dict[int, list[WebhookAttempt]] = {delivery_id: [] for delivery_id in delivery_ids}
    if not delivery_ids:
        return found
    rows = session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttempt.id)
    )
    for attempt in rows:
        found[attempt.delivery_id].append(attempt)
    return found


def _check(session: Session, fields: Mapping[str, Any], allow_private: bool) -> None:
    if "url" in fields:
        _check_url(fields["url"], allow_private)
    unknown = [event for event in fields.get("events") or [] if event not in ALL_EVENTS]
    if unknown:
        raise InvalidFieldError(
            "events", f"unknown: {', '.join(unknown)}; known: {', '.join(ALL_EVENTS)}"
        )
    _known(session, "value_streams", ValueStream.key, fields.get("value_streams") or [])
    _known(session, "environments", Environment.key, fields.get("environments") or [])


def _check_url(url: str, allow_private: bool) -> None:
    problem = addresses.url_problem(url)
    host = urlsplit(url).hostname or ""
    literal = addresses.literal_address(host)
    if problem is None and literal is not None:
        problem = addresses.address_problem(literal, allow_private)
    if problem is None and not allow_private and host.lower().rstrip(".") == "localhost":
        problem = "localhost is a loopback address (FLAGSVC_WEBHOOK_ALLOW_PRIVATE=1 allows it)"
    if problem is not None:
        raise InvalidFieldError("url", problem)


def _known(session: Session, field: str, column: Any, keys: Sequence[str]) -> None:
    if not keys:
        return
    found = set(session.scalars(select(column).where(column.in_(list(keys)))))
    missing = [key for key in keys if key not in found]
    if missing:
        raise InvalidFieldError(field, f"no such key: {', '.join(missing)}")


def _unique_name(session: Session, name: str) -> None:
    if session.scalar(select(Webhook.id).where(Webhook.name == name)) is not None:
        raise DuplicateKeyError("webhook", name, field="name")


def _subject(hook: Webhook) -> audit.Subject:
    return audit.Subject("webhook", hook.name)
