"""One process's delivery, assembled and hung on the database's commit hook.

Every committed write session announces its audit head (``Database.on_write_commit``,
through ``services.audit.on_commit``, which knows the head the transaction recorded)
to the broker; the broker tells the head tracker at once and, before streams wake,
has the cache refresh the environments that have open streams. With ``REDIS_URL`` the
broker is Redis pub/sub and snapshots are shared through Redis; without, both stay in
the process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flagsvc.delivery.broker import ChangeBroker
from flagsvc.delivery.broker import InProcessBroker
from flagsvc.delivery.broker import RedisBroker
from flagsvc.delivery.cache import SnapshotCache
from flagsvc.delivery.heads import HeadTracker
from flagsvc.delivery.snapshots import audit_head
from flagsvc.delivery.store import RedisSnapshotStore
from flagsvc.services import audit
from flagsvc.storage.db import Database
from flagsvc.storage.redis import RedisCircuit


@dataclass(frozen=True, slots=True)
class Delivery:
    """The head tracker, the change broker and the snapshot cache of one process."""

    database: Database
    heads: HeadTracker
    broker: ChangeBroker
    cache: SnapshotCache

    def prepare(self, version: int) -> None:
        """The broker's hook, once per new version: bring watched environments up to it."""
        self.cache.prepare(self.database.read, version)


def start_delivery(database: Database, redis_url: str | None, head_poll_seconds: float) -> Delivery:
    """Assemble delivery for ``database`` and hang it on its commit hook.

    ``head_poll_seconds`` bounds how long a lost broker message can go unnoticed: the
    tracker and the broker re-read the head that often (``FLAGSVC_HEAD_POLL_SECONDS``).
    """
    head_source = head_reader(database)
    heads = HeadTracker(head_source, max_age=head_poll_seconds)
    broker: ChangeBroker
    if redis_url:
        circuit = RedisCircuit()
        redis_broker = RedisBroker(redis_url, head_source, head_poll_seconds, circuit)
        cache = SnapshotCache(RedisSnapshotStore(redis_broker.client, circuit), heads=heads)
        broker = redis_broker
    else:
        broker = InProcessBroker(head_source, head_poll_seconds)
        cache = SnapshotCache(heads=heads)
    delivery = Delivery(database, heads, broker, cache)
    broker.prepare = delivery.prepare
    broker.heard = heads.heard
    audit.on_commit(database, broker.publish)
    return delivery


def head_reader(database: Database) -> Callable[[], int]:
    """Reads the committed audit head (what the tracker and brokers fall back on)."""

    def head() -> int:
        with database.read() as session:
            return audit_head(session)

    return head
