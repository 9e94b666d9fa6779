"""The snapshot cache answers from memory while the database cannot be reached."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from flagsvc.delivery.cache import GZIP_FAST_FROM
from flagsvc.delivery.cache import CachedSnapshot
from flagsvc.delivery.cache import SnapshotCache
from flagsvc.delivery.snapshots import EncodedSnapshot
from flagsvc.delivery.store import RedisSnapshotStore
from flagsvc.state import AppState
from flagsvc.storage.redis import RedisCircuit

# Nothing listens on port 1: connecting fails the way a stopped server does.
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/flagsvc?connect_timeout=1"


@contextmanager
def unreachable_sessions() -> Iterator[Session]:
    engine = create_engine(UNREACHABLE)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def test_the_last_snapshot_is_served_while_the_database_is_down(app: Flask) -> None:
    state: AppState = app.extensions["flagsvc"]
    cache = SnapshotCache()
    before = cache.get(state.db.read, "production")
    assert cache.get(unreachable_sessions, "production") is before


def test_without_a_cached_snapshot_the_outage_is_reported(app: Flask) -> None:
    with pytest.raises(OperationalError):
        SnapshotCache().get(unreachable_sessions, "production")


@pytest.mark.parametrize("size", [1_000, GZIP_FAST_FROM + 1])
def test_gzipped__small_or_big_body__compressed_once_and_decodes_to_it(size: int) -> None:
    body = b'{"version":3,"flags":{"f":"' + b"x" * size + b'"}}'
    entry = CachedSnapshot(EncodedSnapshot("production", 3, 3, "h", body), {})
    assert gzip.decompress(entry.gzipped()) == body
    assert entry.gzipped() is entry.gzipped()


def test_store_get__older_than_asked__body_not_read(redis_url: str) -> None:
    """A process that holds a version asks Redis only for a newer snapshot: an older
    one's body (14 MB with a million-member cohort) is not sent at all."""
    client = redis.Redis.from_url(redis_url)
    store = RedisSnapshotStore(client, RedisCircuit())
    store.put(EncodedSnapshot("production", 4, 5, "h", b'{"version":4}'))
    assert store.get("production", at_least=6) is None
    assert store.get("production", at_least=5) == store.get("production")
    assert store.get("production").head == 5  # type: ignore[union-attr]
    assert store.wait_for("production", 6, 0.05) is None
    client.close()
