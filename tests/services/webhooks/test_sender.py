"""The sender's SSRF guard, checked when sending (names resolve then, and may change)."""

from __future__ import annotations

import time

from flagsvc.domain.webhooks import signing
from flagsvc.services.webhooks.sender import Sender
from tests.webhook_receiver import Receiver


def test_send__name_resolving_to_a_private_address__refused_before_connecting(
    receiver: Receiver,
):
    guarded = Sender(timeout=1, allow_private=False)
    try:
        outcome = guarded.send(f"http://localhost:{receiver.port}/hook", b"{}", "s", {})
    finally:
        guarded.close()

    assert not outcome.delivered
    assert outcome.error is not None and outcome.error.startswith("refused: 127.0.0.1")
    assert receiver.received == []


def test_send__rebinding_name__connects_to_the_address_it_checked(receiver: Receiver):
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])  # a DNS answer that changes between looks
    pinned = Sender(timeout=1, allow_private=True, resolver=lambda _host, _port: next(answers))
    try:
        outcome = pinned.send(f"http://rebind.example:{receiver.port}/hook", b"{}", "s", {})
    finally:
        pinned.close()

    assert outcome.delivered, outcome.error
    [got] = receiver.received
    assert got.headers["Host"] == f"rebind.example:{receiver.port}"
    assert signing.verify("s", got.headers[signing.SIGNATURE_HEADER], got.body, int(time.time()))


def test_send__redirect__not_followed_and_counted_as_failure(receiver: Receiver):
    receiver.behaviour.status = 302
    sender = Sender(timeout=1, allow_private=True)
    try:
        outcome = sender.send(receiver.url, b"{}", "s", {})
    finally:
        sender.close()
    assert not outcome.delivered and outcome.error == "HTTP 302"
