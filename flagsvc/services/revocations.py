"""Revoked SDK keys, announced to every process so each stops accepting them at once.

Every process trusts an SDK key it has seen for 5 s (``credentials.SdkKeyCache``) and
holds the streams the key opened. ``KeyRevocations`` is the one hook for ending both:
whoever revokes a key (API, UI, CLI) calls ``announce(key_id)`` after the commit;
this process forgets the key and ends its streams at once, and with ``REDIS_URL``
every other process does the same when the message reaches it on the pub/sub channel
``<change channel>:sdk-key-revoked`` (a message is the key's id; measured within a
second across instances by ``tests/api/test_sdk_key_revocation.py``). The SDK then
gets 401 on its next request or reconnect and stops for good.

A lost message (Redis down while revoking, or without Redis in another worker or
instance) costs time, never the revocation itself: the cache's 5 s still bounds when
the key is refused, and a stream of it that stays open only ever hears version
numbers (each snapshot fetch it prompts is refused).
"""

from __future__ import annotations

import logging
import random
import threading
import weakref
from typing import Any
from typing import Protocol

from redis.exceptions import RedisError

from flagsvc.services.credentials import SdkKeyCache
from flagsvc.storage.redis import RedisCircuit
from flagsvc.storage.redis import channel_for
from flagsvc.storage.redis import redis_client

_JITTER = random.SystemRandom()
"""Jitter from the OS, not the shared ``random`` state: a background thread drawing from
the global generator changes it under code that seeded it (hypothesis notices), and each
forked worker gets its own draws."""

log = logging.getLogger(__name__)

CHANNEL_SUFFIX = ":sdk-key-revoked"


class Endable(Protocol):
    """Something a revocation ends: a stream's subscription (``Subscription.end``)."""

    def end(self) -> None: ...


class KeyRevocations:
    """Announce revoked SDK keys; forget them and end their streams wherever they are heard.

    Listening starts on first use (``start``), never in ``__init__``: gunicorn forks
    (and gevent patches ``threading``) after the app is built.
    """

    def __init__(
        self, cache: SdkKeyCache, redis_url: str | None = None, circuit: RedisCircuit | None = None
    ) -> None:
        self.cache = cache
        self._streams: dict[int, weakref.WeakSet[Any]] = {}
        self._guard = threading.Lock()
        self._redis = _RedisChannel(redis_url, self.heard, circuit) if redis_url else None

    def start(self) -> None:
        """Begin hearing other processes' revocations (idempotent, cheap to call often)."""
        if self._redis is not None:
            self._redis.start()

    def announce(self, key_id: int) -> None:
        """Key ``key_id`` was revoked (committed): act here now, and tell every other process."""
        self.heard(key_id)
        if self._redis is not None:
            self._redis.publish(key_id)

    def heard(self, key_id: int) -> None:
        """Forget the key and end every stream it holds in this process."""
        self.cache.forget(key_id)
        with self._guard:
            streams = list(self._streams.pop(key_id, ()))
        for stream in streams:
            stream.end()

    def hold(self, key_id: int | None, stream: Endable) -> None:
        """Remember that ``stream`` belongs to SDK key ``key_id`` (ended at once if revoked).

        Held weakly: a stream that ends on its own needs no goodbye.
        """
        if key_id is None:
            return
        with self._guard:
            self._streams.setdefault(key_id, weakref.WeakSet()).add(stream)
        if self.cache.is_revoked(key_id):  # revoked between its authentication and now
            self.heard(key_id)

    def close(self) -> None:
        """Stop listening (tests, shutdown)."""
        if self._redis is not None:
            self._redis.close()


class _RedisChannel:
    """Publishes key ids and runs ONE listener thread per process that hands them on."""

    def __init__(self, url: str, heard: Any, circuit: RedisCircuit | None = None) -> None:
        self.url = url
        self.channel = channel_for(url, "flagsvc:changes") + CHANNEL_SUFFIX
        self.client = redis_client(url)
        self.circuit = circuit or RedisCircuit()
        self.connected = threading.Event()
        self._heard = heard
        self._stopping = threading.Event()
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._started:
            return
        with self._lock:
            if not self._started and not self._stopping.is_set():
                threading.Thread(
                    target=self._listen, name="flagsvc-revocations", daemon=True
                ).start()
                self._started = True

    def publish(self, key_id: int) -> None:
        try:
            self.client.publish(self.channel, str(key_id))
        except RedisError as error:  # the others fall back on their 5 s cache
            self.circuit.failed("publish revocation", error)
            log.warning("could not announce revoked SDK key %s: %s", key_id, error)

    def close(self) -> None:
        self._stopping.set()
        self.client.close()

    def _listen(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                self._listen_once()
                failures = 0
            except Exception as error:  # whatever broke, the listener must live on
                self.connected.clear()
                self.circuit.failed("subscribe revocations", error)
            delay = min(2.0, 0.05 * 2**failures) * _JITTER.uniform(0.5, 1.0)
            failures += 1
            self._stopping.wait(delay)

    def _listen_once(self) -> None:
        client = redis_client(self.url)
        pubsub = client.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self.channel)
            while not self._stopping.is_set():
                message = pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    self.connected.set()
                elif message["type"] == "message":
                    self._hand_on(message["data"])
        finally:
            pubsub.close()
            client.close()

    def _hand_on(self, data: bytes) -> None:
        try:
            key_id = int(data)
        except ValueError:
            log.warning("ignoring a malformed revocation message: %r", data[:40])
            return
        self._heard(key_id)
