"""When a failed delivery is tried again, and when it is given up as dead.

Exponential backoff with "equal jitter": the n-th retry waits between half and all of
``min(BASE * 2**(n-1), MAX_DELAY)``, so receivers coming back after an outage are not hit
by every sender at the same second. A delivery is dead after ``MAX_ATTEMPTS`` attempts
or once ``GIVE_UP_AFTER`` has passed since the event, whichever comes first (about 24
hours of trying: 5 s, 10 s, 20 s … up to an hour between attempts).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta

BASE = timedelta(seconds=5)
MAX_DELAY = timedelta(hours=1)
MAX_ATTEMPTS = 30
GIVE_UP_AFTER = timedelta(hours=24)

JITTER = random.SystemRandom()
"""Jitter from the OS, not the shared ``random`` state: a background thread drawing from
the global generator changes it under code that seeded it (hypothesis notices), and each
forked worker gets its own draws."""


def delay(failed_attempts: int, draw: Callable[[], float] = JITTER.random) -> timedelta:
    """How long to wait after the ``failed_attempts``-th failure (1 for the first)."""
    ceiling: timedelta = min(BASE * 2 ** max(failed_attempts - 1, 0), MAX_DELAY)
    return ceiling / 2 + ceiling / 2 * draw()


def next_attempt(
    created_at: datetime,
    failed_attempts: int,
    now: datetime,
    draw: Callable[[], float] = JITTER.random,
) -> datetime | None:
    """When to try again after a failure at ``now`` (None: give up, the delivery is dead)."""
    if failed_attempts >= MAX_ATTEMPTS:
        return None
    at = now + delay(failed_attempts, draw)
    return None if at > created_at + GIVE_UP_AFTER else at
