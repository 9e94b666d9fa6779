"""Sending a delivery again (``registry.redeliver``): same event id and bytes, one more
attempt now, refused while paused or being sent, audited; on both backends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from flagsvc.domain.actions import Action
from flagsvc.domain.errors import ConflictError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.roles import Role
from flagsvc.services.context import Actor
from flagsvc.services.context import Change
from flagsvc.services.webhooks import registry
from flagsvc.services.webhooks import worker
from flagsvc.services.webhooks.sender import Sender
from flagsvc.state import AppState
from flagsvc.storage.models import AuditEvent
from flagsvc.storage.models import WebhookDelivery
from tests.conftest import Caller
from tests.conftest import MutableClock
from tests.conftest import create_flag
from tests.webhook_receiver import free_port
from tests.webhook_receiver import receiving

STAGE = "/api/v1/flags/{}/environments/staging/stage"


def _failing_delivery(admin: Caller, url: str, name: str = "hook") -> tuple[int, int]:
    """A webhook at ``url`` and the one delivery a stage move queues for it."""
    hook = admin.post("/api/v1/webhooks", json={"name": name, "url": url}).json
    create_flag(admin, f"{name}-flag")
    moved = admin.post(STAGE.format(f"{name}-flag"), json={"stage": "early_access"})
    assert moved.status_code == 200, moved.json
    [row] = admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json["items"]
    return int(hook["id"]), int(row["id"])


def _row(state: AppState, delivery_id: int) -> WebhookDelivery:
    with state.db.read() as session:
        found = session.get(WebhookDelivery, delivery_id)
        assert found is not None
        session.expunge(found)
        return found


def _redeliver(state: AppState, hook_id: int, delivery_id: int) -> dict[str, Any]:
    change = Change(Actor("dana", Role.ADMIN, token_id=1), state.clock(), "req-redeliver")
    with state.db.write() as session:
        row = registry.redeliver(session, change, hook_id, delivery_id)
        return {"status": row.status, "event_id": row.event_id, "next": row.next_attempt_at}


def test_redeliver__dead_delivery__one_more_attempt_now_same_event_id_audited(
    admin: Caller, state: AppState, sender: Sender, clock: MutableClock
):
    port = free_port()  # the receiver is down for more than a day: the delivery dies
    hook_id, delivery_id = _failing_delivery(admin, f"http://127.0.0.1:{port}/hook")
    for _hour in range(26):
        worker.run_due(state.db, sender, state.clock)
        clock.advance(hours=1)
    worker.run_due(state.db, sender, state.clock)
    dead = _row(state, delivery_id)
    assert dead.status == "dead" and dead.next_attempt_at is None

    again = _redeliver(state, hook_id, delivery_id)

    assert again["status"] == "pending" and again["next"] == state.clock()
    with receiving(port) as back:
        [sent] = worker.run_due(state.db, sender, state.clock)
        [got] = back.received
    assert sent.status == "delivered"
    assert got.event_id == dead.event_id and got.body.decode() == dead.body
    settled = _row(state, delivery_id)
    assert settled.status == "delivered" and settled.attempts == dead.attempts + 1
    with state.db.read() as session:
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == Action.WEBHOOK_REDELIVERED)
        ).all()
        assert (event.actor, event.entity_type, event.entity_key) == ("dana", "webhook", "hook")
        assert event.before == {"event_id": dead.event_id, "status": "dead"}
        assert event.after == {"event_id": dead.event_id, "status": "pending"}


def test_redeliver__pending_delivery__skips_the_rest_of_its_wait(
    admin: Caller, state: AppState, sender: Sender
):
    hook_id, delivery_id = _failing_delivery(admin, f"http://127.0.0.1:{free_port()}/hook")
    worker.run_due(state.db, sender, state.clock)
    waiting = _row(state, delivery_id)
    assert waiting.status == "pending" and waiting.next_attempt_at > state.clock()

    assert _redeliver(state, hook_id, delivery_id)["next"] == state.clock()
    assert [a.status for a in worker.run_due(state.db, sender, state.clock)] == ["pending"]


def test_redeliver__being_sent_now__409_until_the_lease_ends(
    admin: Caller, state: AppState, clock: MutableClock
):
    hook_id, delivery_id = _failing_delivery(admin, f"http://127.0.0.1:{free_port()}/hook")
    claimed = worker.claim_next(state.db, state.clock(), timedelta(seconds=30))
    assert claimed is not None and claimed.id == delivery_id

    with pytest.raises(ConflictError, match="being sent right now"):
        _redeliver(state, hook_id, delivery_id)
    clock.advance(seconds=31)  # the worker died holding it: its lease runs out
    assert _redeliver(state, hook_id, delivery_id)["status"] == "pending"


def test_redeliver__paused_webhook__409(admin: Caller, state: AppState):
    hook_id, delivery_id = _failing_delivery(admin, f"http://127.0.0.1:{free_port()}/hook")
    etag = admin.get(f"/api/v1/webhooks/{hook_id}").headers["ETag"]
    paused = admin.patch(
        f"/api/v1/webhooks/{hook_id}", json={"active": False}, headers={"If-Match": etag}
    )
    assert paused.status_code == 200, paused.json

    with pytest.raises(ConflictError, match="paused"):
        _redeliver(state, hook_id, delivery_id)


def test_redeliver__delivery_of_another_webhook__not_found(admin: Caller, state: AppState):
    _hook_a, delivery_a = _failing_delivery(admin, f"http://127.0.0.1:{free_port()}/a", "a")
    hook_b, _delivery_b = _failing_delivery(admin, f"http://127.0.0.1:{free_port()}/b", "b")

    with pytest.raises(NotFoundError):
        _redeliver(state, hook_b, delivery_a)
    with pytest.raises(NotFoundError):
        _redeliver(state, 999_999, delivery_a)
