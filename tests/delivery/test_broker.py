"""Change brokers: in-process and Redis fan-out, publishing exactly on commit, reconnects.

The Redis restart tests run their OWN redis-server on a free port (never stopping the
shared one), so they can stop and start it under the broker.
"""

from __future__ import annotations

import gc
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from flagsvc.delivery.broker import InProcessBroker
from flagsvc.delivery.broker import RedisBroker
from flagsvc.delivery.broker import channel_for
from flagsvc.delivery.broker import collection_deferred
from flagsvc.services import audit
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Change
from flagsvc.state import AppState
from flagsvc.storage.redis import RedisCircuit
from tests.conftest import service_missing
from tests.live import free_port


class Head:
    """A fake audit head the brokers' safety net reads."""

    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


def _wait_for(subscription, version: int, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if subscription.wait(0.05) == version:
            return True
    return False


# --- in-process ---------------------------------------------------------------------


def test_in_process__publish__every_subscriber_wakes_with_newest_version():
    broker = InProcessBroker(Head(), poll_seconds=60)
    first, second = broker.subscribe(), broker.subscribe()
    broker.publish(3)
    broker.publish(5)
    assert first.wait(1) == 5  # the newest, not a backlog
    assert second.wait(1) == 5
    assert first.wait(0.05) is None
    broker.close()


def test_in_process__older_or_repeated_version__does_not_wake():
    broker = InProcessBroker(Head(), poll_seconds=60)
    subscription = broker.subscribe()
    broker.publish(7)
    assert subscription.wait(1) == 7
    broker.publish(7)
    broker.publish(6)
    assert subscription.wait(0.05) is None
    broker.close()


def test_in_process__blocked_waiter__woken_from_another_thread():
    broker = InProcessBroker(Head(), poll_seconds=60)
    subscription = broker.subscribe()
    got: list[int | None] = []
    waiter = threading.Thread(target=lambda: got.append(subscription.wait(5)))
    waiter.start()
    time.sleep(0.05)
    started = time.monotonic()
    broker.publish(1)
    waiter.join(5)
    assert got == [1] and time.monotonic() - started < 0.5
    broker.close()


def test_in_process__close__count_drops_and_broker_close_ends_waits():
    broker = InProcessBroker(Head(), poll_seconds=60)
    first, second = broker.subscribe(), broker.subscribe()
    assert broker.subscriber_count == 2
    first.close()
    first.close()  # idempotent
    assert broker.subscriber_count == 1 and first.closed
    started = time.monotonic()
    threading.Timer(0.1, broker.close).start()
    assert second.wait(5) is None
    assert second.closed and time.monotonic() - started < 1


def test_in_process__write_from_another_process__poller_announces_head():
    head = Head()
    broker = InProcessBroker(head, poll_seconds=0.02)
    subscription = broker.subscribe()
    head.value = 9  # committed by someone who could not reach this broker
    assert _wait_for(subscription, 9)
    broker.close()


def test_in_process__database_reset__lower_head_announced_after_two_reads():
    head = Head()
    broker = InProcessBroker(head, poll_seconds=0.02)
    subscription = broker.subscribe()
    broker.publish(50)
    assert subscription.wait(1) == 50
    head.value = 2
    assert _wait_for(subscription, 2)
    broker.close()


def test_in_process__prepare__runs_once_per_version_before_anyone_wakes():
    broker = InProcessBroker(Head(), poll_seconds=60)
    prepared: list[int] = []
    broker.prepare = lambda version: (time.sleep(0.05), prepared.append(version))
    subscriptions = [broker.subscribe() for _ in range(5)]
    broker.publish(3)
    for subscription in subscriptions:
        assert subscription.wait(2) == 3
        assert prepared == [3]  # finished before this subscriber woke
    broker.close()


def test_in_process__poller_reads_a_version_being_prepared__its_commit_time_is_kept():
    """The safety net only announces what no publisher brought: the version a message
    is preparing keeps its commit time (the propagation histogram's only source)."""
    head = Head()
    broker = InProcessBroker(head, poll_seconds=0.01)
    broker.prepare = lambda version: time.sleep(0.3)  # several polls read the head meanwhile
    subscription = broker.subscribe()
    head.value = 6
    broker.publish(6, committed_at=1234.5)
    assert subscription.wait(2) == 6
    assert subscription.committed_at == 1234.5
    broker.close()


def test_in_process__poller_finds_a_new_head__streams_wake_to_it_prepared():
    head = Head()
    broker = InProcessBroker(head, poll_seconds=0.01)
    prepared: list[int] = []
    broker.prepare = lambda version: (time.sleep(0.05), prepared.append(version))
    subscription = broker.subscribe()
    head.value = 9  # another process's commit, heard only by re-reading the head
    assert _wait_for(subscription, 9)
    assert prepared == [9] and subscription.committed_at is None
    broker.close()


def test_in_process__prepare__runs_with_the_collector_deferred_then_restored():
    broker = InProcessBroker(Head(), poll_seconds=60)
    collecting: list[bool] = []
    broker.prepare = lambda version: collecting.append(gc.isenabled())
    subscription = broker.subscribe()
    assert gc.isenabled()
    broker.publish(5)
    assert subscription.wait(2) == 5
    assert collecting == [False]  # no collection between the build and the events
    assert gc.isenabled()  # and collecting again once they are written
    broker.close()


def test_in_process__prepare_fails__the_collector_is_restored():
    broker = InProcessBroker(Head(), poll_seconds=60)
    broker.prepare = lambda version: 1 / 0
    subscription = broker.subscribe()
    broker.publish(6)
    assert subscription.wait(2) == 6
    assert gc.isenabled()
    broker.close()


def test_collection_deferred__leaves_a_collector_someone_else_turned_off_alone():
    gc.disable()
    try:
        with collection_deferred():
            assert not gc.isenabled()
        assert not gc.isenabled()  # still theirs to turn back on
    finally:
        gc.enable()
    with collection_deferred():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_in_process__closed__join_waits_for_a_prepare_still_running():
    """Whoever disposes of the engines after ``close`` must not orphan the connection a
    background thread still reads through: ``join`` returns once the threads are gone."""
    broker = InProcessBroker(Head(), poll_seconds=60)
    started, finish = threading.Event(), threading.Event()
    broker.prepare = lambda version: (started.set(), finish.wait(5))
    broker.subscribe()
    broker.publish(3)
    assert started.wait(2)
    broker.close()
    assert broker.join(0.1) is False  # still preparing
    finish.set()
    assert broker.join(2) is True


def test_in_process__prepare_fails__subscribers_still_wake(caplog):
    broker = InProcessBroker(Head(), poll_seconds=60)
    broker.prepare = lambda version: 1 / 0
    subscription = broker.subscribe()
    broker.publish(4)
    assert subscription.wait(2) == 4
    assert "preparing version 4 failed" in caplog.text
    broker.close()


def test_in_process__no_subscribers__publish_prepares_nothing():
    broker = InProcessBroker(Head(), poll_seconds=60)
    prepared: list[int] = []
    broker.prepare = prepared.append
    broker.publish(8)
    assert prepared == []
    broker.close()


# --- publishing on commit -----------------------------------------------------------


def _audited_write(state: AppState, fail: bool) -> None:
    change = Change(SYSTEM, state.clock(), "broker-test")
    with state.db.write() as session:
        audit.record(session, change, "test.happened", audit.Subject("test", "x"), None, {})
        if fail:
            raise RuntimeError("roll back")


def test_audit_on_commit__committed_write__publishes_its_head(app):
    state: AppState = app.extensions["flagsvc"]
    subscription = state.broker.subscribe()
    _audited_write(state, fail=False)
    with state.db.read() as session:
        from flagsvc.delivery.snapshots import audit_head

        head = audit_head(session)
    assert subscription.wait(1) == head
    subscription.close()


def test_audit_on_commit__rolled_back_write__publishes_nothing(app):
    state: AppState = app.extensions["flagsvc"]
    subscription = state.broker.subscribe()
    with pytest.raises(RuntimeError):
        _audited_write(state, fail=True)
    assert subscription.wait(0.2) is None
    _audited_write(state, fail=False)  # and the next commit is not confused by it
    assert subscription.wait(1) is not None
    subscription.close()


def test_audit_on_commit__read_sessions_and_unaudited_writes__publish_nothing(app):
    state: AppState = app.extensions["flagsvc"]
    subscription = state.broker.subscribe()
    with state.db.write() as session:
        session.info["unrelated"] = True
    with state.db.read():
        pass
    assert subscription.wait(0.1) is None
    subscription.close()


# --- Redis --------------------------------------------------------------------------


def test_channel_for__database_number__namespaces_channel():
    assert channel_for("redis://127.0.0.1:6379") == "flagsvc:changes"
    assert channel_for("redis://127.0.0.1:6379/0") == "flagsvc:changes"
    assert channel_for("redis://127.0.0.1:6379/4") == "flagsvc:changes:db4"
    assert channel_for("redis://127.0.0.1:6379?db=3") == "flagsvc:changes:db3"


@pytest.fixture
def shared_redis_url(redis_url: str) -> str:
    """The test run's Redis (this worker's database, emptied), not one the test starts."""
    return redis_url


class OwnRedis:
    """A redis-server this test starts and may stop (not the shared one)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"), "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def own_redis(shared_redis_url) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        service_missing("Redis", "redis-server is not installed")
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


def _redis_broker(url: str, head: Head, poll: float = 60) -> RedisBroker:
    return RedisBroker(url, head, poll, RedisCircuit(cooldown=0.1))


def _wait_connected(*brokers: RedisBroker) -> None:
    for broker in brokers:
        broker.subscribe().close()  # starts the listener
        assert broker.connected.wait(5), "listener never subscribed"


def test_redis__publish_on_one_instance__subscribers_on_the_other_wake(shared_redis_url):
    a, b = _redis_broker(shared_redis_url, Head()), _redis_broker(shared_redis_url, Head())
    _wait_connected(a, b)
    on_a, on_b = a.subscribe(), b.subscribe()
    started = time.monotonic()
    a.publish(1_000_001)
    assert on_b.wait(2) == 1_000_001 and time.monotonic() - started < 0.5
    assert on_a.wait(1) == 1_000_001  # local subscribers too, without a round trip
    assert a.status() == "ok"
    a.close()
    b.close()


def test_redis__many_local_streams__one_listener_connection(shared_redis_url):
    broker = _redis_broker(shared_redis_url, Head())
    subscriptions = [broker.subscribe() for _ in range(200)]
    assert broker.connected.wait(5)
    client = redis.Redis.from_url(shared_redis_url)
    assert client.pubsub_numsub(broker.channel)[0][1] >= 1
    listeners = [t for t in threading.enumerate() if t.name == "flagsvc-redis-listener"]
    assert len(listeners) >= 1
    publisher = _redis_broker(shared_redis_url, Head())
    publisher.publish(2_000_002)
    assert all(s.wait(2) == 2_000_002 for s in subscriptions)
    broker.close()
    publisher.close()


def test_redis__pubsub_connection_killed__reconnects_and_resyncs(own_redis):
    head = Head()
    a, b = _redis_broker(own_redis.url, head), _redis_broker(own_redis.url, head)
    _wait_connected(a, b)
    on_b = b.subscribe()
    b.connected.clear()
    redis.Redis(port=own_redis.port).client_kill_filter(_type="pubsub")
    assert b.connected.wait(5), "listener did not come back"
    a.publish(31)
    assert _wait_for(on_b, 31)
    a.close()
    b.close()


def test_redis__restarted__degraded_meanwhile_then_next_change_arrives(own_redis):
    head = Head()
    a, b = _redis_broker(own_redis.url, head), _redis_broker(own_redis.url, head)
    _wait_connected(a, b)
    on_a, on_b = a.subscribe(), b.subscribe()
    own_redis.stop()
    assert b.status() == "down"
    a.publish(40)  # Redis is gone: A's own streams still hear it at once
    assert on_a.wait(1) == 40
    head.value = 40  # what the database says; B learns it when it resubscribes
    b.connected.clear()
    own_redis.start()
    assert b.connected.wait(10), "listener did not reconnect"
    assert _wait_for(on_b, 40)
    a.publish(41)
    assert _wait_for(on_b, 41)
    assert b.status() == "ok"
    a.close()
    b.close()


def test_redis__down_for_a_while__poller_keeps_streams_moving(own_redis):
    head = Head()
    broker = _redis_broker(own_redis.url, head, poll=0.05)
    subscription = broker.subscribe()
    assert broker.connected.wait(5)
    own_redis.stop()
    head.value = 77  # a change committed on another instance while Redis is down
    assert _wait_for(subscription, 77)
    broker.close()
