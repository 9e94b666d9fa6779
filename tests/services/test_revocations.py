"""Revoked SDK keys: forgotten and their streams ended here at once, elsewhere through Redis."""

from __future__ import annotations

import time

import redis

from flagsvc.delivery.broker import InProcessBroker
from flagsvc.services.context import Actor
from flagsvc.services.credentials import SdkKeyCache
from flagsvc.services.revocations import KeyRevocations
from tests.live_helpers import wait_for

KEY = "fss_production_secret"
ACTOR = Actor(name="sdk-key:fss_production_a", role=None, environment="production", sdk_key_id=3)


def _cached(revocations: KeyRevocations) -> bool:
    """Whether the key is answered from the cache (no lookup)."""
    looked_up: list[bool] = []
    revocations.cache.actor(KEY, lambda: looked_up.append(True) or ACTOR)
    return not looked_up


def test_announce__here__forgets_the_key_and_ends_its_streams_now():
    broker = InProcessBroker(lambda: 0, poll_seconds=60)
    revocations = KeyRevocations(SdkKeyCache())
    revocations.cache.actor(KEY, lambda: ACTOR)
    own, other = broker.subscribe(), broker.subscribe()
    revocations.hold(3, own)
    revocations.hold(4, other)
    started = time.monotonic()
    revocations.announce(3)
    assert own.wait(30) is None and own.closed  # woken at once, not after 30 s
    assert time.monotonic() - started < 1
    assert not other.closed and not _cached(revocations)
    broker.close()


def test_hold__stream_of_a_key_already_revoked__ended_at_once():
    broker = InProcessBroker(lambda: 0, poll_seconds=60)
    revocations = KeyRevocations(SdkKeyCache())
    revocations.announce(3)
    late = broker.subscribe()  # authenticated before the revocation, subscribed after it
    revocations.hold(3, late)
    assert late.closed
    broker.close()


def test_announce__redis__other_process_forgets_within_a_second(redis_url):
    here, there = KeyRevocations(SdkKeyCache(), redis_url), KeyRevocations(SdkKeyCache(), redis_url)
    for side in (here, there):
        side.start()
        assert side._redis is not None and side._redis.connected.wait(5)
    there.cache.actor(KEY, lambda: ACTOR)
    assert _cached(there)
    started = time.monotonic()
    here.announce(3)
    wait_for(lambda: there.cache.is_revoked(3), timeout=1.0)
    assert time.monotonic() - started < 1 and not _cached(there)
    here.close()
    there.close()


def test_redis_listener__malformed_message__ignored_and_still_listening(redis_url, caplog):
    revocations = KeyRevocations(SdkKeyCache(), redis_url)
    revocations.start()
    assert revocations._redis is not None and revocations._redis.connected.wait(5)
    client = redis.Redis.from_url(redis_url)
    client.publish(revocations._redis.channel, b"not-a-number")
    client.publish(revocations._redis.channel, b"9")
    wait_for(lambda: revocations.cache.is_revoked(9), timeout=2.0)
    assert "malformed revocation" in caplog.text
    revocations.close()
