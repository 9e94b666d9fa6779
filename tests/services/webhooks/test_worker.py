"""Webhook delivery end to end: a change through the API, the outbox row written with it,
the worker sending it to a real receiver on 127.0.0.1, and every way that can go wrong."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy import select

from flagsvc.domain.stages import Stage
from flagsvc.domain.webhooks import signing
from flagsvc.services import flag_states
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Change
from flagsvc.services.flag_states import Where
from flagsvc.services.webhooks import worker
from flagsvc.services.webhooks.sender import Sender
from flagsvc.state import AppState
from flagsvc.storage.models import WebhookDelivery
from tests.conftest import Caller
from tests.conftest import MutableClock
from tests.conftest import create_flag
from tests.webhook_receiver import Receiver
from tests.webhook_receiver import free_port
from tests.webhook_receiver import receiving

SECRET = "whsec_test-secret-0123456789abcdef"
STAGE = "/api/v1/flags/{}/environments/staging/stage"


def _hook(admin: Caller, url: str, **fields: Any) -> dict[str, Any]:
    body = {"name": fields.pop("name", "hook"), "url": url, "secret": SECRET, **fields}
    made = admin.post("/api/v1/webhooks", json=body)
    assert made.status_code == 201, made.json
    return made.json  # type: ignore[no-any-return]


def _early_access(admin: Caller, key: str) -> None:
    moved = admin.post(STAGE.format(key), json={"stage": "early_access"})
    assert moved.status_code == 200, moved.json


def _log(admin: Caller, hook: dict[str, Any]) -> list[dict[str, Any]]:
    found = admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries")
    assert found.status_code == 200, found.json
    return found.json["items"]  # type: ignore[no-any-return]


def test_delivery__stage_move__receiver_gets_it_signed_once(
    admin: Caller, state: AppState, receiver: Receiver, sender: Sender
):
    hook = _hook(admin, receiver.url, events=["flag.early_access_entered"])
    create_flag(admin, "beta-search")
    _early_access(admin, "beta-search")

    done = worker.run_due(state.db, sender, state.clock)

    assert [attempt.status for attempt in done] == ["delivered"]
    [got] = receiver.received
    assert signing.verify(SECRET, got.headers["Flagsvc-Signature"], got.body, int(time.time()))
    assert not signing.verify(
        "whsec_someone-else", got.headers["Flagsvc-Signature"], got.body, int(time.time())
    )
    assert got.json["id"] == got.event_id
    assert got.json["type"] == got.headers["Flagsvc-Event"] == "flag.early_access_entered"
    assert got.json["data"]["flag"] == "beta-search"
    assert got.json["data"]["environment"] == "staging"
    assert got.json["data"]["safe_to_promise"] is False
    [logged] = _log(admin, hook)
    assert logged["status"] == "delivered"
    assert logged["event_id"] == got.event_id
    [tried] = logged["attempt_log"]
    assert tried["status_code"] == 200 and tried["error"] is None and tried["latency_ms"] >= 0
    assert worker.run_due(state.db, sender, state.clock) == []  # nothing sent twice


def test_outbox__change_rolled_back__nothing_is_sent(
    admin: Caller, state: AppState, receiver: Receiver, sender: Sender, clock: MutableClock
):
    hook = _hook(admin, receiver.url)
    create_flag(admin, "never-moved")

    with pytest.raises(RuntimeError), state.db.write() as session:
        change = Change(SYSTEM, clock(), "rolled-back")
        where = Where("never-moved", "staging")
        flag_states.move_stage(session, change, where, Stage.EARLY_ACCESS, None)
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
        raise RuntimeError("the request failed after the change was written")

    assert worker.run_due(state.db, sender, state.clock) == []
    assert receiver.received == []
    assert _log(admin, hook) == []


def test_receiver_down_for_minutes__delivered_when_back__same_event_id(
    admin: Caller, state: AppState, sender: Sender, clock: MutableClock
):
    port = free_port()  # nothing listens there: the receiver is down
    hook = _hook(admin, f"http://127.0.0.1:{port}/hook", events=["flag.killed"])
    create_flag(admin, "risky")
    _early_access(admin, "risky")
    assert admin.post("/api/v1/flags/risky/environments/staging/kill").status_code == 200

    failures = 0
    for _minute in range(6):  # six minutes down, the worker trying whenever it is due
        failures += len(worker.run_due(state.db, sender, state.clock))
        clock.advance(minutes=1)
    [pending] = _log(admin, hook)
    assert pending["status"] == "pending"
    assert pending["attempts"] == failures >= 4  # 5 s, 10 s, 20 s, 40 s, 80 s … apart
    assert all(a["status_code"] is None and a["error"] for a in pending["attempt_log"])

    with receiving(port) as back:
        clock.advance(hours=1)  # past any backoff
        done = worker.run_due(state.db, sender, state.clock)
        assert [attempt.status for attempt in done] == ["delivered"]
        [got] = back.received
    assert got.event_id == pending["event_id"] == got.json["id"]
    [delivered] = _log(admin, hook)
    assert delivered["status"] == "delivered"
    assert delivered["attempts"] == failures + 1


def test_slow_receiver__times_out__retried_with_the_same_event_id(
    admin: Caller, state: AppState, receiver: Receiver, sender: Sender, clock: MutableClock
):
    hook = _hook(admin, receiver.url)
    create_flag(admin, "slow")
    receiver.behaviour.delays = [2.0]  # the first answer comes long after the 0.5 s timeout
    _early_access(admin, "slow")

    [first] = worker.run_due(state.db, sender, state.clock)
    assert first.status == "pending"
    assert first.outcome.error is not None and "timeout" in first.outcome.error

    clock.advance(minutes=1)
    [second] = worker.run_due(state.db, sender, state.clock)
    assert second.status == "delivered"
    assert second.event_id == first.event_id
    [logged] = _log(admin, hook)
    assert [a["status_code"] for a in logged["attempt_log"]] == [None, 200]
    assert logged["attempt_log"][0]["error"].startswith("timeout")
    assert logged["attempts"] == 2


def test_receiver_failing__dead_after_a_day_of_retries(
    admin: Caller, state: AppState, receiver: Receiver, sender: Sender, clock: MutableClock
):
    hook = _hook(admin, receiver.url)
    receiver.behaviour.status = 500
    create_flag(admin, "doomed")
    _early_access(admin, "doomed")

    for _hour in range(26):
        worker.run_due(state.db, sender, state.clock)
        clock.advance(hours=1)
    worker.run_due(state.db, sender, state.clock)

    [logged] = _log(admin, hook)
    assert logged["status"] == "dead"
    assert logged["next_attempt_at"] is None
    assert logged["last_status_code"] == 500 and logged["last_error"] == "HTTP 500"
    assert 10 <= logged["attempts"] <= 40
    assert len({r.event_id for r in receiver.received}) == 1


def test_two_workers__at_once__never_send_the_same_delivery_concurrently(
    admin: Caller, state: AppState, receiver: Receiver
):
    _hook(admin, receiver.url, events=["flag.early_access_entered"])
    for number in range(12):
        create_flag(admin, f"many-{number}")
        _early_access(admin, f"many-{number}")
    receiver.behaviour.delay = 0.05
    senders = [Sender(timeout=5, allow_private=True) for _ in range(2)]
    results: list[list[worker.Attempted]] = [[], []]

    def work(index: int) -> None:
        results[index] = worker.run_due(state.db, senders[index], state.clock)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for made in senders:
        made.close()

    assert all(results), "both workers delivered some"
    sent = [attempt.event_id for result in results for attempt in result]
    assert len(sent) == len(set(sent)) == 12
    assert sorted(r.event_id for r in receiver.received) == sorted(sent)
    assert set(receiver.max_in_flight.values()) == {1}


def test_lease__claimed_delivery__another_worker_skips_it(
    admin: Caller, state: AppState, receiver: Receiver, sender: Sender, clock: MutableClock
):
    _hook(admin, receiver.url)
    create_flag(admin, "leased")
    _early_access(admin, "leased")

    claimed = worker.claim_next(state.db, clock(), worker.lease_for(sender))

    assert claimed is not None
    assert worker.claim_next(state.db, clock(), worker.lease_for(sender)) is None
    clock.advance(seconds=worker.lease_for(sender).total_seconds() + 1)
    again = worker.claim_next(state.db, clock(), worker.lease_for(sender))
    assert again is not None and again.event_id == claimed.event_id  # its worker died


def test_slack_format__text_message_with_the_event_id_in_a_header(
    admin: Caller, state: AppState, receiver: Receiver, sender: Sender
):
    _hook(admin, receiver.url, format="slack", events=["flag.early_access_entered"])
    create_flag(admin, "chatty", name="Chatty search")
    _early_access(admin, "chatty")

    worker.run_due(state.db, sender, state.clock)

    [got] = receiver.received
    assert set(got.json) == {"text"}
    assert "*Chatty search* entered early access in staging" in got.json["text"]
    assert got.event_id.startswith("evt_")


def test_filters__other_value_stream_and_environment__not_sent(
    admin: Caller, state: AppState, receiver: Receiver, sender: Sender
):
    stream = {"key": "growth", "name": "Growth"}
    assert admin.post("/api/v1/value-streams", json=stream).status_code == 201
    _hook(admin, receiver.url, name="growth-only", value_streams=["growth"])
    _hook(admin, receiver.url, name="prod-only", environments=["production"])
    create_flag(admin, "elsewhere")
    _early_access(admin, "elsewhere")

    assert worker.run_due(state.db, sender, state.clock) == []
    assert receiver.received == []


def test_inactive_webhook__writes_nothing_new(
    admin: Caller, state: AppState, receiver: Receiver, sender: Sender
):
    hook = _hook(admin, receiver.url, active=False)
    create_flag(admin, "quiet")
    _early_access(admin, "quiet")

    assert worker.run_due(state.db, sender, state.clock) == []
    assert _log(admin, hook) == []


def test_early_access__back_from_a_proven_general_rollout__says_safe_to_promise(
    admin: Caller, state: AppState, receiver: Receiver, sender: Sender, clock: MutableClock
):
    _hook(admin, receiver.url, events=["flag.early_access_entered"])
    create_flag(admin, "proven")
    _early_access(admin, "proven")
    clock.advance(days=8)
    assert admin.post(STAGE.format("proven"), json={"stage": "general"}).status_code == 200
    _early_access(admin, "proven")  # rolled back: the unbroken stretch goes on

    worker.run_due(state.db, sender, state.clock)

    first, second = sorted(receiver.received, key=lambda r: r.json["data"]["audit_seq"])
    assert first.json["data"]["safe_to_promise"] is False
    assert second.json["data"]["safe_to_promise"] is True
    assert second.json["data"]["safe_since"].startswith("2026-10-08")
