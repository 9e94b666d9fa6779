"""The webhook worker: claims due deliveries, sends them, retries, gives up.

Deliveries are claimed a few at a time in a short transaction with ``SELECT … FOR UPDATE
SKIP LOCKED`` (another worker skips the rows instead of waiting for them) that sets a
lease, ``leased_until``, long enough for their attempts; the lease is committed before the HTTP
request, so no connection is held while a receiver thinks, and no other worker claims
the delivery while the lease lasts. The result is written in a second transaction.
A worker that dies mid-attempt leaves a lease that runs out; the delivery is then sent
again (at least once: receivers drop duplicates by event id). SQLite has no row locks,
but its write transactions are serialised (``BEGIN IMMEDIATE``), which gives the same
guarantee for the embedded default.

It runs beside the scheduler: ``flagsvc serve --with-scheduler`` and ``flagsvc scheduler``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from sqlalchemy import or_
from sqlalchemy import select

from flagsvc.domain.webhooks import retry
from flagsvc.domain.webhooks import signing
from flagsvc.observability import metrics
from flagsvc.services.webhooks import notices
from flagsvc.services.webhooks.outbox import DEAD
from flagsvc.services.webhooks.outbox import DELIVERED
from flagsvc.services.webhooks.outbox import PENDING
from flagsvc.services.webhooks.sender import Outcome
from flagsvc.services.webhooks.sender import Sender
from flagsvc.storage.db import Database
from flagsvc.storage.models import Webhook
from flagsvc.storage.models import WebhookAttempt
from flagsvc.storage.models import WebhookDelivery

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0
"""Seconds between two looks for due deliveries when the last look found none."""
NOTICE_INTERVAL = 300.0
"""Seconds between two looks for stale flags and features newly safe to promise."""
MAX_PER_RUN = 200
LEASE_MARGIN = timedelta(seconds=30)
CLAIM_BATCH = 5
"""Deliveries claimed per transaction (fewer claims; a longer lease if the worker dies)."""
GONE = "gone"
"""What :func:`settle` answers when the webhook was deleted during the attempt."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery leased to this worker for one attempt."""

    id: int
    url: str
    secret: str
    body: str
    event_id: str
    event_type: str


@dataclass(frozen=True, slots=True)
class Attempted:
    """One attempt and what the delivery became (pending, delivered, dead)."""

    event_id: str
    outcome: Outcome
    status: str


def lease_for(sender: Sender, batch: int = 1) -> timedelta:
    """How long a claim of ``batch`` deliveries keeps other workers off them: past the
    end of every attempt of the batch, sent one after the other."""
    return timedelta(seconds=3 * sender.timeout * batch) + LEASE_MARGIN


def claim_next(database: Database, now: datetime, lease: timedelta) -> Claimed | None:
    """Lease the delivery due soonest that nobody holds (None: nothing is due)."""
    claimed = claim(database, now, lease, 1)
    return claimed[0] if claimed else None


def claim(database: Database, now: datetime, lease: timedelta, most: int) -> list[Claimed]:
    """Lease up to ``most`` deliveries due soonest that nobody holds, in one transaction."""
    due = (
        WebhookDelivery.status == PENDING,
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until <= now),
        Webhook.active.is_(True),
    )
    stmt = (
        select(WebhookDelivery, Webhook.url, Webhook.secret)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(*due)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(most)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    )
    with database.write() as session:
        found = []
        for delivery, url, secret in session.execute(stmt).all():
            delivery.leased_until = now + lease
            found.append(
                Claimed(
                    delivery.id, url, secret, delivery.body, delivery.event_id, delivery.event_type
                )
            )
        return found


def attempt(sender: Sender, claimed: Claimed) -> Outcome:
    """Send one claimed delivery (no transaction is open meanwhile)."""
    headers = {
        signing.EVENT_ID_HEADER: claimed.event_id,
        signing.EVENT_TYPE_HEADER: claimed.event_type,
    }
    return sender.send(claimed.url, claimed.body.encode(), claimed.secret, headers)


def settle(
    database: Database,
    claimed: Claimed,
    outcome: Outcome,
    now: datetime,
    draw: Callable[[], float] = retry.JITTER.random,
) -> str:
    """Log the attempt and move the delivery on: delivered, due again later, or dead."""
    with database.write() as session:
        delivery = session.get(WebhookDelivery, claimed.id, with_for_update=True)
        if delivery is None:  # its webhook was deleted meanwhile
            return GONE
        delivery.attempts += 1
        delivery.leased_until = None
        delivery.last_status_code, delivery.last_error = outcome.status_code, outcome.error
        session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                attempted_at=now,
                status_code=outcome.status_code,
                latency_ms=outcome.latency_ms,
                error=outcome.error,
            )
        )
        if outcome.delivered:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = DELIVERED, now, None
        else:
            later = retry.next_attempt(delivery.created_at, delivery.attempts, now, draw)
            delivery.next_attempt_at = later
            delivery.status = PENDING if later is not None else DEAD
        return delivery.status


def run_due(
    database: Database,
    sender: Sender,
    clock: Callable[[], datetime],
    limit: int = MAX_PER_RUN,
) -> list[Attempted]:
    """Attempt every delivery due now, ``CLAIM_BATCH`` claimed at a time; return what
    happened (each attempt is logged in its own transaction as soon as it ends)."""
    done: list[Attempted] = []
    lease = lease_for(sender, CLAIM_BATCH)
    while len(done) < limit:
        batch = claim(database, clock(), lease, min(CLAIM_BATCH, limit - len(done)))
        if not batch:
            break
        for claimed in batch:
            outcome = attempt(sender, claimed)
            status = settle(database, claimed, outcome, clock())
            metrics.WEBHOOK_ATTEMPTS.labels("retry" if status == PENDING else status).inc()
            if status == DEAD:
                log.warning("Webhook delivery %s is dead: %s", claimed.event_id, outcome.error)
            done.append(Attempted(claimed.event_id, outcome, status))
    return done


def run_forever(
    database: Database,
    sender: Sender,
    clock: Callable[[], datetime],
    stop: threading.Event,
    interval: float = POLL_INTERVAL,
) -> None:
    """Deliver due notifications until ``stop`` is set; look for notices now and then."""
    next_notices = 0.0
    while not stop.is_set():
        busy = False
        try:
            if time.monotonic() >= next_notices:
                notices.find(database, clock())
                next_notices = time.monotonic() + NOTICE_INTERVAL
            busy = len(run_due(database, sender, clock)) >= MAX_PER_RUN
        except Exception:  # e.g. the database is down: try again next time
            log.exception("The webhook worker failed a pass; it tries again in %g s.", interval)
        if not busy:
            stop.wait(interval)


def start_in_background(
    database: Database,
    clock: Callable[[], datetime],
    timeout: float,
    allow_private: bool,
    interval: float = POLL_INTERVAL,
) -> threading.Event:
    """Start :func:`run_forever` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    sender = Sender(timeout, allow_private)
    thread = threading.Thread(
        target=run_forever,
        args=(database, sender, clock, stop, interval),
        name="flagsvc-webhooks",
        daemon=True,
    )
    thread.start()
    return stop
