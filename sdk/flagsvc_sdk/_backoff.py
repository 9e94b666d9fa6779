"""Jittered exponential backoff for reconnecting the stream.

"Full jitter" (AWS Architecture Blog, *Exponential Backoff And Jitter*): the n-th delay is
uniform in ``[0, min(cap, base * 2**n)]``. Spreading reconnects at random keeps a fleet
of SDKs from hammering a service that just came back in synchronised waves.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Delays for successive failures; :meth:`reset` after a success.

    :param base: the ceiling of the first delay, in seconds.
    :param cap: the largest ceiling any delay can have.
    :param uniform: ``random.uniform``-like source, injectable for tests.
    """

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 30.0,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._uniform = uniform

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self.cap, self.base * 2.0 ** min(self.attempt, 62))

    def next_delay(self) -> float:
        """Return the next delay (in ``[0, ceiling()]``) and count the failure."""
        delay = self._uniform(0.0, self.ceiling())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start again from ``base`` after the stream connected."""
        self.attempt = 0
