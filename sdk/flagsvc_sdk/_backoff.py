"""Jittered exponential backoff for reconnecting the stream.

"Full jitter" (AWS Architecture Blog, *Exponential Backoff And Jitter*): the n-th delay is
uniform in ``[0, min(cap, base * 2**n)]``. Spreading reconnects at random keeps a fleet
of SDKs from hammering a service that just came back in synchronised waves.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]

_JITTER = random.SystemRandom()
"""Jitter from the OS, not the shared ``random`` state: the SDK lives inside someone else's
process, and a background thread drawing from ``random`` would change what their own seeded
code (or Hypothesis, which checks that state) sees."""


class Backoff:
    """Delays for successive failures; :meth:`reset` after a success.

    :param base: the ceiling of the first delay, in seconds.
    :param cap: the largest ceiling any delay can have.
    :param jitter: the random share of each delay: ``1.0`` is full jitter (uniform in
        ``[0, ceiling]``), ``0.5`` keeps at least half of the ceiling (uniform in
        ``[ceiling / 2, ceiling]``) for waits that must not come back early.
    :param uniform: ``random.uniform``-like source, injectable for tests.
    """

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 30.0,
        jitter: float = 1.0,
        uniform: Callable[[float, float], float] = _JITTER.uniform,
    ) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._jitter = jitter
        self._uniform = uniform

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self.cap, self.base * 2.0 ** min(self.attempt, 62))

    def next_delay(self) -> float:
        """Return the next delay (at most ``ceiling()``) and count the failure."""
        ceiling = self.ceiling()
        delay = self._uniform(ceiling * (1.0 - self._jitter), ceiling)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start again from ``base`` after a success."""
        self.attempt = 0
