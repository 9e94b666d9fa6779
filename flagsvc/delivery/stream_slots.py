"""This process's SDK stream slots, shared fairly between SDK keys and client addresses.

``FLAGSVC_MAX_STREAMS`` bounds the streams of a process; on its own it let one SDK key
from one address take all 2,000 and another environment's key got 503. So each key
may hold at most ``FLAGSVC_MAX_STREAMS_PER_KEY`` of them and each client address
``FLAGSVC_MAX_STREAMS_PER_ADDRESS``; beyond its share a caller is refused (429 +
``Retry-After``), while the others still get in. Counted per process, as the streams
themselves are: a stream lives in one process.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Share:
    """Whose share is used up: ``what`` (an SDK key, a client address) and its limit."""

    what: str
    limit: int


class Slot:
    """One stream's place; ``release`` gives it back (idempotent: close paths overlap)."""

    def __init__(self, slots: StreamSlots, key_id: int, address: str) -> None:
        self._slots = slots
        self._held: tuple[int, str] | None = (key_id, address)

    def release(self) -> None:
        with self._slots.lock:
            if self._held is not None:
                self._slots.give_back(*self._held)
                self._held = None


class StreamSlots:
    """Open streams per SDK key and per client address in this process."""

    def __init__(self, per_key: int, per_address: int) -> None:
        self.per_key = per_key
        self.per_address = per_address
        self.lock = threading.Lock()
        self._by_key: Counter[int] = Counter()
        self._by_address: Counter[str] = Counter()

    def take(self, key_id: int, address: str) -> Slot | Share:
        """A slot for a stream of ``key_id`` from ``address``, or the share it would exceed."""
        with self.lock:
            if self._by_key[key_id] >= self.per_key:
                return Share("this SDK key", self.per_key)
            if self._by_address[address] >= self.per_address:
                return Share("this client address", self.per_address)
            self._by_key[key_id] += 1
            self._by_address[address] += 1
            return Slot(self, key_id, address)

    def give_back(self, key_id: int, address: str) -> None:
        """Called by ``Slot.release`` with the lock held."""
        self._by_key[key_id] -= 1
        if self._by_key[key_id] <= 0:
            del self._by_key[key_id]
        self._by_address[address] -= 1
        if self._by_address[address] <= 0:
            del self._by_address[address]

    def held(self, key_id: int) -> int:
        """Streams ``key_id`` holds here (tests, readiness)."""
        with self.lock:
            return self._by_key[key_id]
