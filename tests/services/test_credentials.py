"""The SDK-key cache: fresh hits skip the database, outages fall back, guesses never stick."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import ProgrammingError

from flagsvc.services.context import Actor
from flagsvc.services.credentials import KeyUseThrottle
from flagsvc.services.credentials import SdkKeyCache

KEY = "fss_production_secret"
ACTOR = Actor(name="sdk-key:fss_production", role=None, environment="production")


class Lookups:
    """Stands in for the database lookup: counts calls, answers or fails as told."""

    def __init__(self, answer: Actor | None = ACTOR) -> None:
        self.answer = answer
        self.error: Exception | None = None
        self.calls = 0

    def __call__(self) -> Actor | None:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.answer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def outage() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("connection refused"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> SdkKeyCache:
    return SdkKeyCache(fresh_seconds=5, stale_seconds=60, clock=clock)


def test_a_fresh_key_is_answered_without_a_lookup(cache: SdkKeyCache, clock: Clock) -> None:
    lookups = Lookups()
    assert cache.actor(KEY, lookups) == ACTOR
    clock.now += 4.9
    assert cache.actor(KEY, lookups) == ACTOR
    assert lookups.calls == 1


def test_after_the_fresh_window_the_key_is_checked_again(cache: SdkKeyCache, clock: Clock) -> None:
    lookups = Lookups()
    cache.actor(KEY, lookups)
    clock.now += 5.1
    lookups.answer = None  # revoked meanwhile
    assert cache.actor(KEY, lookups) is None
    assert cache.actor(KEY, lookups) is None
    assert lookups.calls == 3


def test_unknown_keys_are_never_cached(cache: SdkKeyCache) -> None:
    lookups = Lookups(answer=None)
    assert cache.actor(KEY, lookups) is None
    assert cache.actor(KEY, lookups) is None
    assert lookups.calls == 2


def test_an_unreachable_database_falls_back_to_a_recent_key(
    cache: SdkKeyCache, clock: Clock
) -> None:
    lookups = Lookups()
    cache.actor(KEY, lookups)
    lookups.error = outage()
    clock.now += 30
    assert cache.actor(KEY, lookups) == ACTOR
    clock.now += 40  # past fresh + stale
    with pytest.raises(OperationalError):
        cache.actor(KEY, lookups)


def test_an_unreachable_database_with_an_unknown_key_raises(cache: SdkKeyCache) -> None:
    lookups = Lookups()
    lookups.error = outage()
    with pytest.raises(OperationalError):
        cache.actor(KEY, lookups)


def test_other_database_errors_are_not_hidden(cache: SdkKeyCache, clock: Clock) -> None:
    lookups = Lookups()
    cache.actor(KEY, lookups)
    clock.now += 6
    lookups.error = ProgrammingError("SELECT", {}, Exception("no such column"))
    with pytest.raises(ProgrammingError):
        cache.actor(KEY, lookups)


REVOKED = Actor(
    name="sdk-key:fss_production_abc", role=None, environment="production", sdk_key_id=7
)


def test_a_forgotten_key_is_looked_up_again_at_once(cache: SdkKeyCache) -> None:
    lookups = Lookups(answer=REVOKED)
    cache.actor(KEY, lookups)
    cache.forget(7)
    lookups.answer = None  # the database says revoked
    assert cache.actor(KEY, lookups) is None
    assert lookups.calls == 2


def test_a_lookup_that_raced_the_revocation_is_not_cached(cache: SdkKeyCache) -> None:
    # Given a request that read the key just before the revocation committed,
    # When it finishes after the process heard of the revocation,
    # Then the key is not remembered for another 5 s.
    cache.forget(7)
    lookups = Lookups(answer=REVOKED)
    assert cache.actor(KEY, lookups) == REVOKED  # that one request still had it
    cache.actor(KEY, lookups)
    assert lookups.calls == 2 and cache.is_revoked(7)


def test_key_use__noted_once_per_interval_per_key() -> None:
    clock = Clock()
    throttle = KeyUseThrottle(every=60, clock=clock)
    assert throttle.due(1) and throttle.due(2)
    assert not throttle.due(1)
    clock.now += 59.9
    assert not throttle.due(1)
    clock.now += 0.2
    assert throttle.due(1) and not throttle.due(1)


def test_a_lookup_in_flight__the_others_keep_the_known_key_meanwhile(
    cache: SdkKeyCache, clock: Clock
) -> None:
    # Given a key past its fresh window
    lookups = Lookups()
    cache.actor(KEY, lookups)
    clock.now += 6
    assert cache.fresh(KEY) is None  # the first poll after the window takes the full path
    during: list[object] = []

    def slow_lookup() -> Actor | None:
        # every other poll of the same key while this one reads the database
        during.append(cache.fresh(KEY))
        during.append(cache.actor(KEY, lookups))
        return ACTOR

    # When one request looks it up again
    assert cache.actor(KEY, slow_lookup) == ACTOR
    # Then the others were answered from the entry, with no second lookup
    assert during == [ACTOR, ACTOR] and lookups.calls == 1
    assert cache.fresh(KEY) == ACTOR  # and the key is fresh again


def test_a_lookup_in_flight_too_long__the_others_look_up_themselves(
    cache: SdkKeyCache, clock: Clock
) -> None:
    lookups = Lookups()
    cache.actor(KEY, lookups)
    clock.now += 6
    during: list[object] = []

    def hanging_lookup() -> Actor | None:
        clock.now += SdkKeyCache.REFRESH_GRACE_SECONDS
        during.append(cache.fresh(KEY))
        during.append(cache.actor(KEY, lookups))
        return ACTOR

    cache.actor(KEY, hanging_lookup)
    assert during == [None, ACTOR] and lookups.calls == 2


def test_a_failed_lookup_ends_the_grace(cache: SdkKeyCache, clock: Clock) -> None:
    lookups = Lookups()
    cache.actor(KEY, lookups)
    clock.now += 61 + 5  # past the stale window too: the outage is not hidden
    lookups.error = outage()
    with pytest.raises(OperationalError):
        cache.actor(KEY, lookups)
    assert cache.fresh(KEY) is None


def test_a_key_revoked_during_its_lookup__not_served_meanwhile(
    cache: SdkKeyCache, clock: Clock
) -> None:
    lookups = Lookups(answer=REVOKED)
    cache.actor(KEY, lookups)
    clock.now += 6
    during: list[object] = []

    def lookup_racing_revocation() -> Actor | None:
        cache.forget(7)  # the revocation is announced while the lookup runs
        during.append(cache.fresh(KEY))
        return REVOKED  # read just before the revocation committed

    cache.actor(KEY, lookup_racing_revocation)
    assert during == [None] and cache.fresh(KEY) is None
