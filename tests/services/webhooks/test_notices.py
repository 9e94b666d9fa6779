"""Notifications time makes true: a flag turning stale, a feature becoming safe to promise."""

from __future__ import annotations

from flagsvc.services.webhooks import notices
from flagsvc.services.webhooks import worker
from flagsvc.services.webhooks.sender import Sender
from flagsvc.state import AppState
from tests.conftest import Caller
from tests.conftest import MutableClock
from tests.conftest import create_flag
from tests.webhook_receiver import Receiver


def _into_early_access(admin: Caller, key: str, environment: str) -> None:
    path = f"/api/v1/flags/{key}/environments/{environment}/stage"
    assert admin.post(path, json={"stage": "early_access"}).status_code == 200


def test_stale__found_once_per_occurrence__delivered(
    admin: Caller, state: AppState, receiver: Receiver, sender: Sender, clock: MutableClock
):
    hook = {"name": "cleanup", "url": receiver.url, "events": ["flag.stale"]}
    assert admin.post("/api/v1/webhooks", json=hook).status_code == 201
    create_flag(admin, "forgotten")
    _into_early_access(admin, "forgotten", "staging")
    assert notices.find(state.db, clock()) == 0  # on and fresh: not stale

    clock.advance(days=31)  # on in staging, no SDK has reported evaluating it since
    assert notices.find(state.db, clock()) == 1
    assert notices.find(state.db, clock()) == 0  # the same occurrence is not sent twice
    worker.run_due(state.db, sender, state.clock)

    [got] = receiver.received
    assert got.json["type"] == "flag.stale"
    assert got.json["data"]["flag"] == "forgotten"
    assert got.json["data"]["reason"] == "not evaluated"


def test_safe_to_promise__when_the_board_starts_listing_it(
    admin: Caller, state: AppState, receiver: Receiver, sender: Sender, clock: MutableClock
):
    hook = {"name": "marketing", "url": receiver.url, "events": ["flag.safe_to_promise"]}
    assert admin.post("/api/v1/webhooks", json=hook).status_code == 201
    create_flag(admin, "coming-soon", name="Coming soon")
    _into_early_access(admin, "coming-soon", "production")
    clock.advance(days=6)
    assert notices.find(state.db, clock()) == 0  # not proven yet

    clock.advance(days=2)
    assert notices.find(state.db, clock()) == 1
    assert notices.find(state.db, clock()) == 0
    worker.run_due(state.db, sender, state.clock)

    [got] = receiver.received
    assert got.json["type"] == "flag.safe_to_promise"
    assert got.json["data"]["flag"] == "coming-soon"
    assert got.json["data"]["environment"] == "production"


def test_notices__nobody_subscribed__nothing_looked_for(
    admin: Caller, state: AppState, receiver: Receiver, clock: MutableClock
):
    hook = {"name": "kills-only", "url": receiver.url, "events": ["flag.killed"]}
    assert admin.post("/api/v1/webhooks", json=hook).status_code == 201
    create_flag(admin, "ignored")
    _into_early_access(admin, "ignored", "production")
    clock.advance(days=40)

    assert notices.find(state.db, clock()) == 0
