"""The demo's webhook: marketing's Slack channel and a quarter of its delivery log.

The webhook is made on the quarter's first day through ``registry.create_webhook``, so
every later change of the demo writes its notifications to the outbox like any change,
and the worker's own ``notices.find`` finds the features that become safe to promise.
Its URL is fictional (``hooks.example.com``: nothing answers there), so instead of
sending, the demo plays the worker with its own ``claim`` and ``settle`` once a
simulated day, writing what a Slack receiver would have answered: 200 within a few
hundred milliseconds, except that the first delivery of the quarter's last two weeks
meets an outage (a timeout, then a 503) and is delivered on its third attempt, after
the worker's backoff. Nothing is left pending, so the worker ``make demo`` starts has
nothing to send to the fictional address; a change made while exploring the demo is
tried there, retried and given up after 24 hours, unless the webhook is pointed at a
real receiver (``PATCH /api/v1/webhooks/<id>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain.roles import Role
from flagsvc.domain.webhooks.events import EventType
from flagsvc.services.context import Actor
from flagsvc.services.context import Change
from flagsvc.services.webhooks import notices
from flagsvc.services.webhooks import registry
from flagsvc.services.webhooks import worker
from flagsvc.services.webhooks.outbox import DELIVERED
from flagsvc.services.webhooks.sender import Outcome
from flagsvc.storage.db import Database
from flagsvc.storage.models import Webhook
from flagsvc.storage.models import WebhookDelivery

ADMIN = Actor("alex", Role.ADMIN)
NAME = "marketing-slack"
URL = "https://hooks.example.com/flagsvc/marketing"
EVENTS = (  # what marketing wants to hear about in production (not every readiness tick)
    EventType.EARLY_ACCESS_ENTERED,
    EventType.SAFE_TO_PROMISE,
    EventType.READY_TO_LAUNCH,
    EventType.LAUNCH_SCHEDULED,
    EventType.LAUNCHED,
    EventType.LAUNCH_SKIPPED,
    EventType.KILLED,
    EventType.RELEASED,
)
OUTAGE = (  # the receiver's outage: what the caught delivery's first attempts get
    Outcome(None, 10_000.0, "timeout after 10 s"),
    Outcome(503, 48.6, "HTTP 503"),
)
OUTAGE_DAYS = 14
"""The outage catches the first delivery of the quarter's last ``OUTAGE_DAYS`` days (so
it is among the newest deliveries the UI shows)."""
PICKUP = timedelta(milliseconds=400)
"""How long a due delivery waits for the worker's next look (it polls every second)."""
_LEASE = timedelta(minutes=1)


def create(session: Session, change: Change) -> None:
    """Marketing's channel hears of production launches, kills and releases (a demo step,
    by ``ADMIN``: only admins manage webhooks)."""
    fields = {
        "name": NAME,
        "url": URL,
        "events": [event.value for event in EVENTS],
        "environments": ["production"],
        "format": "slack",
    }
    registry.create_webhook(session, change, fields, allow_private=False)


@dataclass(slots=True)
class Receiver:
    """What the fictional Slack endpoint answers: always 200, but for one outage."""

    outage_from: datetime
    caught: int | None = None

    def answer(self, delivery_id: int, created_at: datetime, failed: int) -> Outcome:
        """The outcome of attempt ``failed + 1`` at delivery ``delivery_id``."""
        if self.caught is None and created_at >= self.outage_from:
            self.caught = delivery_id
        if delivery_id == self.caught and failed < len(OUTAGE):
            return OUTAGE[failed]
        return Outcome(200, 95.0 + (delivery_id * 7919) % 2600 / 10)


def look(database: Database, receiver: Receiver, at: datetime) -> int:
    """One look of the worker at ``at``: notices that became true, then every delivery
    due; return how many attempts it made."""
    notices.find(database, at)
    return deliver(database, receiver, at)


def deliver(database: Database, receiver: Receiver, until: datetime) -> int:
    """Attempt every delivery due by ``until``, each at the moment it fell due (a retry
    too, if due by then); return how many attempts were made."""
    made = 0
    while batch := worker.claim(database, until, _LEASE, worker.CLAIM_BATCH):
        for claimed in batch:
            with database.read() as session:
                row = session.get(WebhookDelivery, claimed.id)
                if row is None:  # its webhook was deleted meanwhile (the demo never does)
                    continue
                due, created, failed = row.next_attempt_at, row.created_at, row.attempts
            outcome = receiver.answer(claimed.id, created, failed)
            ended = (due or created) + PICKUP + timedelta(milliseconds=outcome.latency_ms)
            worker.settle(database, claimed, outcome, ended, draw=lambda: 0.5)
            made += 1
    return made


@dataclass(frozen=True, slots=True)
class Log:
    """The demo webhook's delivery log, counted for the operator."""

    webhook_id: int
    deliveries: int
    delivered: int
    retried: int

    def lines(self) -> list[str]:
        """Human-readable lines for the demo's summary."""
        return [
            f"webhook delivery log: {NAME} (Slack format; production early access, launches, "
            f"kills, releases, safe to promise) has {self.deliveries} deliveries, "
            f"{self.delivered} delivered, {self.retried} after a timeout and a 503",
            f"see /ui/admin/webhooks (admins) or GET /api/v1/webhooks/{self.webhook_id}/deliveries;"
            f" {URL} is fictional: what you change now is retried there and given up after"
            " 24 hours, unless you PATCH the url to a receiver of yours",
        ]


def log(session: Session) -> Log | None:
    """The demo webhook's log (None: the demo has none)."""
    hook = session.scalar(select(Webhook.id).where(Webhook.name == NAME))
    if hook is None:
        return None
    mine = WebhookDelivery.webhook_id == hook
    count = select(func.count()).select_from(WebhookDelivery).where(mine)
    return Log(
        hook,
        session.scalar(count) or 0,
        session.scalar(count.where(WebhookDelivery.status == DELIVERED)) or 0,
        session.scalar(count.where(WebhookDelivery.attempts > 1)) or 0,
    )
