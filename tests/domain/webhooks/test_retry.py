from datetime import UTC
from datetime import datetime
from datetime import timedelta

from flagsvc.domain.webhooks import retry

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def test_delay__grows_exponentially_with_jitter_within_half_to_whole():
    assert retry.delay(1, lambda: 0.0) == timedelta(seconds=2.5)
    assert retry.delay(1, lambda: 1.0) == timedelta(seconds=5)
    assert retry.delay(4, lambda: 1.0) == timedelta(seconds=40)


def test_delay__capped_at_an_hour():
    assert retry.delay(30, lambda: 1.0) == retry.MAX_DELAY


def test_next_attempt__after_max_attempts__dead():
    assert retry.next_attempt(T0, retry.MAX_ATTEMPTS, T0) is None
    assert retry.next_attempt(T0, retry.MAX_ATTEMPTS - 1, T0) is not None


def test_next_attempt__past_a_day_since_the_event__dead():
    late = T0 + retry.GIVE_UP_AFTER - timedelta(minutes=1)
    assert retry.next_attempt(T0, 12, late, lambda: 1.0) is None


def test_schedule__tries_for_about_a_day():
    now, attempts = T0, 0
    while True:
        attempts += 1
        later = retry.next_attempt(T0, attempts, now, lambda: 1.0)
        if later is None:
            break
        now = later
    assert attempts <= retry.MAX_ATTEMPTS
    assert now - T0 > timedelta(hours=20)
