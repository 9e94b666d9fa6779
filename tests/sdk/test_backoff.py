"""Jittered exponential backoff: bounds, growth, cap, reset, and real jitter."""

from __future__ import annotations

import random

import pytest
from flagsvc_sdk._backoff import Backoff


def test_backoff__ceilings__double_from_base_up_to_cap() -> None:
    backoff = Backoff(base=0.5, cap=30.0, uniform=lambda low, high: high)
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]


@pytest.mark.parametrize("seed", range(5))
def test_backoff__full_jitter__every_delay_within_zero_and_ceiling(seed: int) -> None:
    rng = random.Random(seed)
    backoff = Backoff(base=0.5, cap=30.0, uniform=rng.uniform)
    for attempt in range(200):
        ceiling = min(30.0, 0.5 * 2**attempt)
        assert 0.0 <= backoff.next_delay() <= ceiling


def test_backoff__jitter__spreads_delays_across_the_range() -> None:
    # Given many clients failing at the same moment (the herd after an outage)
    delays = []
    for seed in range(500):
        backoff = Backoff(base=0.5, cap=30.0, uniform=random.Random(seed).uniform)
        for _ in range(8):
            delay = backoff.next_delay()
        delays.append(delay)
    # Then their 8th reconnects are spread over [0, 30], not synchronised
    assert min(delays) < 3 and max(delays) > 27
    assert len({round(d, 3) for d in delays}) > 450


def test_backoff__reset__starts_again_from_base() -> None:
    backoff = Backoff(base=0.5, cap=30.0, uniform=lambda low, high: high)
    for _ in range(20):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_backoff__thousands_of_failures__no_overflow() -> None:
    backoff = Backoff(base=0.5, cap=30.0, uniform=lambda low, high: high)
    for _ in range(5000):
        assert backoff.next_delay() <= 30.0


def test_next_delay__default_source__leaves_the_shared_random_state_alone():
    # the SDK runs in the product's process: its reconnect thread must not move the state
    # of ``random`` that the product (or Hypothesis, which checks it) seeds and reads
    before = random.getstate()
    backoff = Backoff()
    delays = [backoff.next_delay() for _ in range(20)]
    assert random.getstate() == before
    assert all(0.0 <= d <= 30.0 for d in delays)
