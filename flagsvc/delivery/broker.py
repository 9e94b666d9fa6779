"""Change notification: "the audit head is now N", fanned out to every open SDK stream.

A broker carries only the new version: a stream that wakes asks the snapshot cache
whether its environment really changed, so a lost message costs latency, never
correctness. While anyone is subscribed, each broker also re-reads the audit head
every few seconds (``head_source``): that is how a process hears of writes from
another process without Redis (a second worker, the CLI, the scheduler) and how
streams keep moving while Redis is down.

``InProcessBroker`` (embedded default) wakes this process's streams directly. ``RedisBroker``
adds pub/sub with ONE listener thread per process (1,000 streams, one connection) that
reconnects with jittered backoff and re-reads the head after every (re)subscribe.
Pub/sub ignores Redis database numbers, so the channel is ``flagsvc:changes`` on db 0
and ``flagsvc:changes:db<N>`` otherwise. A message is ``"<version> <commit time>"``
(Unix seconds; a bare version is accepted too, untimed): each subscription reports the
commit time of the version it woke for, which the stream turns into
``flagsvc_change_propagation_seconds``. Re-reading the head announces only a version
nothing brought (no commit time, so untimed); like a message's, it wakes the streams
once the snapshot cache has prepared it. Threads start on first use, never in
``__init__``: gunicorn forks (and gevent patches ``threading``) after the app is built.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import random
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any
from typing import Protocol

from redis.exceptions import RedisError

from flagsvc.observability import metrics
from flagsvc.storage.redis import RedisCircuit
from flagsvc.storage.redis import channel_for as redis_channel_for
from flagsvc.storage.redis import redis_client

_JITTER = random.SystemRandom()
"""Jitter from the OS, not the shared ``random`` state: a background thread drawing from
the global generator changes it under code that seeded it (hypothesis notices), and each
forked worker gets its own draws."""

log = logging.getLogger(__name__)

CHANNEL = "flagsvc:changes"
HeadSource = Callable[[], int]  # reads the committed audit head: the broker's safety net
Prepare = Callable[[int], None]  # warms what streams will need for a version
Heard = Callable[[int], None]  # told every version published here or heard from Redis


class Subscription(Protocol):
    """One stream's mailbox. ``wait(timeout)``: the newest version announced since the
    last call, or None after ``timeout``; ``committed_at``: that version's commit time
    (Unix seconds) when a publisher said; ``closed``: the stream should end;
    ``close()`` is idempotent; ``end()`` closes it from another thread and wakes its
    ``wait`` at once (a revoked SDK key's stream)."""

    @property
    def closed(self) -> bool: ...
    @property
    def committed_at(self) -> float | None: ...
    def wait(self, timeout: float) -> int | None: ...
    def close(self) -> None: ...
    def end(self) -> None: ...


class ChangeBroker(Protocol):
    """``publish`` after commit, never before; ``subscribe`` sees every later version;
    ``status`` is ``ok`` / ``down`` for Redis, None when there is nothing to check;
    ``subscriber_count`` is the open-stream gauge; ``prepare`` (optional) runs once per
    new version, before any subscriber wakes, so 1,000 streams find the work done;
    ``heard`` (optional) is told every version at once, before streams wake (the head
    tracker that answers SDK polls without the database)."""

    prepare: Prepare | None
    heard: Heard | None

    def publish(self, version: int, committed_at: float | None = None) -> None: ...
    def listen(self) -> None: ...
    def subscribe(self) -> Subscription: ...
    def status(self) -> str | None: ...
    @property
    def subscriber_count(self) -> int: ...
    def close(self) -> None: ...
    def join(self, timeout: float = 5.0) -> bool: ...


def channel_for(url: str) -> str:
    """The change channel for the Redis database ``url`` names."""
    return redis_channel_for(url, CHANNEL)


def parse_message(data: bytes | str) -> tuple[int, float | None]:
    """``(version, commit time)`` from a pub/sub message (``ValueError`` if malformed)."""
    text = data.decode() if isinstance(data, bytes) else data
    version, _, committed_at = text.partition(" ")
    return int(version), float(committed_at) if committed_at else None


class _Fanout:
    """The newest version and the local subscribers waiting for it.

    Waiters block on one shared ``Event`` that is replaced and set on every new
    version: one ``set`` wakes them all. Measured with 1,000 waiters, that wakes all
    in 13 ms under gevent (a ``Condition.notify_all`` took 34 ms) and 83 ms with OS
    threads (115 ms). Reads of ``tick`` / ``latest`` need no lock: ``latest`` is
    written before ``tick``, and ``tick`` before the event is swapped and set.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Event()
        self.latest = 0
        self.committed_at: float | None = None  # of ``latest``, when its publisher said
        self.tick = 0  # bumps on every announced version, so waiters compare ticks
        self.count = 0
        self.closed = False
        self._lower_seen: int | None = None

    def offer(self, version: int, committed_at: float | None = None) -> None:
        """A published version: wake everyone if it is newer than the newest seen."""
        with self.lock:
            if version > self.latest:
                self._announce(version, committed_at)

    def resync(self, head: int) -> None:
        """The database's head: newer wakes at once; older (a reset database) on the 2nd read.

        (Two reads, so a poll that raced a fresh commit does not move back.)"""
        with self.lock:
            if head > self.latest:
                self._announce(head, None)
            elif head < self.latest:
                if self._lower_seen == head:
                    self._announce(head, None)
                self._lower_seen = head

    def _announce(self, version: int, committed_at: float | None) -> None:
        self.latest, self._lower_seen = version, None
        self.committed_at = committed_at
        self.tick += 1
        changed, self.changed = self.changed, threading.Event()
        changed.set()

    def subscribe(self) -> LocalSubscription:
        with self.lock:
            self.count += 1
            metrics.SDK_STREAMS_OPEN.inc()
            return LocalSubscription(self, self.tick)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.changed.set()  # stays set: every wait returns at once from now on

    def wake(self) -> None:
        """Wake every waiter without a new version (each goes back to waiting unless closed)."""
        with self.lock:
            changed, self.changed = self.changed, threading.Event()
            changed.set()


class LocalSubscription:
    """A subscription on a ``_Fanout``: remembers the last tick it reported."""

    def __init__(self, fanout: _Fanout, tick: int) -> None:
        self._fanout = fanout
        self._seen = tick
        self._closed = False
        self._committed_at: float | None = None

    @property
    def closed(self) -> bool:
        """Closed by the stream or by its broker."""
        return self._closed or self._fanout.closed

    @property
    def committed_at(self) -> float | None:
        """Commit time of the version ``wait`` last returned (None: unknown)."""
        return self._committed_at

    def wait(self, timeout: float) -> int | None:
        """The newest version since the last call, or None after ``timeout`` seconds."""
        fanout = self._fanout
        changed = fanout.changed  # read before the tick: a swap in between shows in the tick
        if fanout.tick == self._seen and not self.closed:
            changed.wait(timeout)
        tick = fanout.tick
        if tick == self._seen or self.closed:
            return None
        self._seen = tick
        self._committed_at = fanout.committed_at
        return fanout.latest

    def close(self) -> None:
        """Stop counting this subscription; idempotent."""
        with self._fanout.lock:
            if not self._closed:
                self._closed = True
                self._fanout.count -= 1
                metrics.SDK_STREAMS_OPEN.dec()

    def end(self) -> None:
        """Close, and wake the stream waiting on it so it ends now, not at its keep-alive.

        Wakes this process's other streams too (they wait again): fine for something
        as rare as a revoked key, too much for every disconnect (``close`` wakes none).
        """
        self.close()
        self._fanout.wake()


class _Background:
    """Starts named daemon threads once, lazily, and stops them together."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._started = False
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start_once(self, targets: dict[str, Callable[[], None]]) -> None:
        if self._started:
            return
        with self._lock:
            if self._started or self.stopping.is_set():
                return
            for name, target in targets.items():
                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)
            self._started = True

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds in all for the stopped threads; True if they ended."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)


@contextlib.contextmanager
def collection_deferred() -> Iterator[None]:
    """No automatic garbage collection inside: one the build's allocations would start
    runs after the change events are written instead of between the build and them.

    With 1,000 streams open a full collection walks some 100,000 objects (53-83 ms of
    CPU, bench/README.md "Where a worker's stalls come from"); inside ``prepare`` it would
    hold back every stream's event that long. Deferred, not skipped: the next allocation
    after the block collects as it would have. Left alone when the collector was already
    off (whoever turned it off turns it back on).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _Announcer:
    """Runs ``prepare`` once per new version on its own thread, then wakes the streams.

    Without it, 1,000 woken streams would race into the snapshot cache together and
    queue behind whichever one rebuilds; with it they wake to a finished snapshot.
    ``prepare`` (the build and the direct write to every stream) runs with the garbage
    collector deferred (``collection_deferred``).
    """

    def __init__(self, fanout: _Fanout) -> None:
        self.fanout = fanout
        self.prepare: Prepare | None = None
        self._pending = 0
        self._pending_at: float | None = None
        self._offered = 0  # the newest version a publisher or a message brought
        self._lock = threading.Lock()
        self._ready = threading.Event()

    def offer(self, version: int, committed_at: float | None = None) -> None:
        with self._lock:
            self._offered = max(self._offered, version)
        if self.prepare is None or self.fanout.count == 0:
            self.fanout.offer(version, committed_at)  # nobody to prepare for
            return
        with self._lock:
            if version > self._pending:
                self._pending, self._pending_at = version, committed_at
        self._ready.set()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self._ready.wait(1.0):
                continue
            self._ready.clear()
            with self._lock:
                version, committed_at = self._pending, self._pending_at
                self._pending, self._pending_at = 0, None
            if version > self.fanout.latest and self.prepare is not None:
                with collection_deferred():
                    try:
                        self.prepare(version)
                    except Exception:  # streams then find out for themselves
                        log.exception("preparing version %s failed", version)
                self.fanout.offer(version, committed_at)

    def wake(self) -> None:
        """Let ``run`` look at its stop event now instead of after its next second."""
        self._ready.set()

    def catch_up(self, head: int) -> None:
        """The head the safety net read: announced only if nothing brought it already.

        A version a message brought may still be preparing when the poll reads it;
        announcing it again from here would wake the streams before their snapshot is
        ready and without the commit time (unmeasured propagation). A newer head is
        prepared like any other; a lower one (a reset database) takes the fanout's
        two-read rule.
        """
        if head > self._offered:
            self.offer(head)
        elif head < self.fanout.latest:
            self.fanout.resync(head)
            if self.fanout.latest == head:
                with self._lock:
                    self._offered = head


def _poll_heads(
    announcer: _Announcer, head_source: HeadSource, every: float, stop: threading.Event
) -> None:
    """Re-read the audit head every ``every`` seconds while anyone is subscribed."""
    failing = False
    while not stop.wait(every):
        if announcer.fanout.count == 0:
            continue
        try:
            announcer.catch_up(head_source())
            failing = False
        except Exception as error:  # the database is down: say so once, keep trying
            if not failing:
                log.warning("cannot read the audit head for streams: %s", error)
            failing = True


class InProcessBroker:
    """The embedded default: publish wakes this process's streams directly."""

    def __init__(self, head_source: HeadSource, poll_seconds: float = 2.0) -> None:
        self.heard: Heard | None = None
        self._fanout = _Fanout()
        self._announcer = _Announcer(self._fanout)
        self._threads = _Background()
        self._poll = (head_source, poll_seconds)

    @property
    def prepare(self) -> Prepare | None:
        """Runs once per new version before streams wake (the snapshot cache's refresh)."""
        return self._announcer.prepare

    @prepare.setter
    def prepare(self, prepare: Prepare | None) -> None:
        self._announcer.prepare = prepare

    def publish(self, version: int, committed_at: float | None = None) -> None:
        """Wake local streams; ``committed_at`` defaults to now (publish follows commit)."""
        self._tell(version)
        self._threads.start_once(self._targets())
        self._announcer.offer(version, committed_at or time.time())

    def listen(self) -> None:
        """Start hearing other instances' versions now (idempotent; cheap once started).

        SDK polls call it: an instance that only answers polls publishes nothing and
        holds no stream, yet must hear the others' changes to stop answering 304s.
        """
        self._threads.start_once(self._targets())

    def subscribe(self) -> Subscription:
        """A new subscription (starts the background threads on first use)."""
        self._threads.start_once(self._targets())
        return self._fanout.subscribe()

    def _tell(self, version: int) -> None:
        if self.heard is not None:
            self.heard(version)

    def status(self) -> str | None:
        """Nothing external to check."""
        return None

    @property
    def subscriber_count(self) -> int:
        """Open subscriptions in this process."""
        return self._fanout.count

    def close(self) -> None:
        """End every subscription and the background threads."""
        self._threads.stopping.set()
        self._announcer.wake()
        self._fanout.close()

    def join(self, timeout: float = 5.0) -> bool:
        """After ``close``: wait for the background threads to end (True if they did).

        A thread still reading the head or preparing a snapshot holds a pooled
        connection; whoever disposes of the engines next (a process shutting down, a
        test) waits here, or that connection outlives its pool unclosed.
        """
        return self._threads.join(timeout)

    def _targets(self) -> dict[str, Callable[[], None]]:
        head_source, every = self._poll
        stop = self._threads.stopping
        return {
            "flagsvc-head-poll": lambda: _poll_heads(self._announcer, head_source, every, stop),
            "flagsvc-announcer": lambda: self._announcer.run(stop),
        }


class RedisBroker(InProcessBroker):
    """Redis pub/sub across instances; one listener thread per process fans out locally."""

    def __init__(
        self, url: str, head_source: HeadSource, every: float, circuit: RedisCircuit
    ) -> None:
        super().__init__(head_source, every)
        self.url = url
        self.channel = channel_for(url)
        self.client = redis_client(url)
        self.circuit = circuit
        self.connected = threading.Event()
        self._unsent = 0  # newest version Redis did not take; sent again on resubscribe
        self._unsent_at: float | None = None
        self._failures = 0  # consecutive failed subscriptions: the backoff exponent

    def publish(self, version: int, committed_at: float | None = None) -> None:
        """Wake local streams at once, then tell the other instances through Redis.

        While Redis is unreachable the others poll the head; the newest version that
        could not be sent is published again as soon as the listener resubscribes.
        """
        committed_at = committed_at or time.time()
        self._tell(version)
        self._threads.start_once(self._targets())
        self._announcer.offer(version, committed_at)
        if version > self._unsent:
            self._unsent, self._unsent_at = version, committed_at
        if not self.circuit.available():
            return
        try:
            self.client.publish(self.channel, f"{version} {committed_at:.6f}")
        except RedisError as error:
            self.circuit.failed("publish", error)
            return
        self.circuit.succeeded()
        if self._unsent == version:
            self._unsent = 0

    def status(self) -> str | None:
        """``ok`` when Redis answers a PING, else ``down``."""
        try:
            self.client.ping()
        except RedisError as error:
            self.circuit.failed("ping", error)
            return "down"
        self.circuit.succeeded()
        return "ok"

    def close(self) -> None:
        """End every subscription, the listener and the poller."""
        super().close()
        self.client.close()

    def _targets(self) -> dict[str, Callable[[], None]]:
        return {**super()._targets(), "flagsvc-redis-listener": self._listen}

    def _listen(self) -> None:
        """Stay subscribed for the life of the process, reconnecting with jittered backoff."""
        while not self._threads.stopping.is_set():
            try:
                self._listen_once()
            except Exception as error:  # whatever broke, the listener must live on
                self.connected.clear()
                self.circuit.failed("subscribe", error)
            delay = min(2.0, 0.05 * 2**self._failures) * _JITTER.uniform(0.5, 1.0)
            self._failures += 1
            self._threads.stopping.wait(delay)

    def _listen_once(self) -> None:
        client = redis_client(self.url)
        pubsub = client.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self.channel)
            while not self._threads.stopping.is_set():
                message = pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._handle(message)
        finally:
            pubsub.close()
            client.close()

    def _handle(self, message: dict[str, Any]) -> None:
        if message["type"] == "subscribe":  # first connect and every reconnect
            self.connected.set()
            self._failures = 0
            self.circuit.succeeded()
            self._resync()
            if self._unsent and not self._threads.stopping.is_set():
                self.publish(self._unsent, self._unsent_at)
        elif message["type"] == "message":
            try:
                version, committed_at = parse_message(message["data"])
            except ValueError:
                log.warning("ignoring a malformed change message: %r", message["data"][:40])
                return
            self._tell(version)
            self._announcer.offer(version, committed_at)

    def _resync(self) -> None:
        """Messages sent while we were away are lost: read the head instead."""
        try:
            self._announcer.catch_up(self._poll[0]())
        except Exception as error:  # the database may be down too; the poller retries
            log.warning("cannot read the audit head after subscribing: %s", error)
