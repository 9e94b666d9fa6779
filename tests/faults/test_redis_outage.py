"""Redis stopped and restarted under load, with two instances sharing it.

While Redis is down the service keeps answering from the database: ``/readyz`` says
degraded (200), admin changes keep succeeding, and instance B still hears of changes
made through A (by re-reading the audit head). After Redis returns, both instances
subscribe again and every SDK client ends on the final state: no change lost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from flagsvc_sdk import Client

from tests.live import LiveService
from tests.live import start_services
from tests.live_helpers import Caller
from tests.live_helpers import admin_client
from tests.live_helpers import wait_for
from tests.live_helpers import wait_for_all

from .servers import RedisServer
from .writers import AdminWriter
from .writers import Stored
from .writers import check_all_or_nothing
from .writers import seed_release

pytestmark = pytest.mark.faults

RAMP_FLAG = "outage-ramp"
BETA_FLAG = "outage-beta"
COHORT = "outage-importers"
CATCH_UP = 10.0  # seconds: "within seconds"
OUTAGE_SECONDS = 3.0  # Redis stays down at least this long
SERVICE_ENV = {
    "FLAGSVC_HEAD_POLL_SECONDS": "0.5",  # how B hears of A's changes while Redis is down
    "FLAGSVC_STREAM_KEEPALIVE_SECONDS": "1",
    "FLAGSVC_WORKERS": "1",  # one Redis listener per instance (counted below)
    "FLAGSVC_ACCESS_LOG": "0",
}
REDIS_DB = 14


def _readiness(service: LiveService) -> tuple[int, dict[str, object]]:
    status, body = service.get("/readyz")
    return status, json.loads(body)


def _is(service: LiveService, status: str, redis: str) -> bool:
    code, body = _readiness(service)
    return (
        code == 200
        and body["status"] == status
        and body["checks"]
        == {
            "database": "ok",
            "redis": redis,
        }
    )


def _snapshot_version(service: LiveService, sdk_key: str) -> int:
    status, body = service.get("/sdk/v1/snapshot", sdk_key)
    assert status == 200, body
    return int(json.loads(body)["version"])


def _subscribers(redis: RedisServer, channel: str) -> int:
    with redis.client() as client:
        return int(dict(client.pubsub_numsub(channel))[channel.encode()])


@pytest.fixture
def instances(fresh_database: str, private_redis: RedisServer) -> Iterator[list[LiveService]]:
    """Instances A and B on one database and one Redis; a ramp flag and an import flag."""
    url = private_redis.url(REDIS_DB)
    services = start_services(2, fresh_database, url, env=SERVICE_ENV)
    try:
        with admin_client(services[0]) as admin:
            seed_release(admin, RAMP_FLAG, BETA_FLAG, COHORT)
        yield list(services)
    finally:
        services.stop()


def test_redis_stopped_and_restarted_under_load__degraded_then_nothing_lost(
    instances: list[LiveService], private_redis: RedisServer, fresh_database: str
) -> None:
    a, b = instances
    assert a.admin_token
    sdk_key = a.sdk_key("staging")
    # Given SDK clients streaming from both instances, product code evaluating on each,
    clients = [
        Client(service.url, sdk_key, poll_interval=60, timeout=2, send_metrics=False)
        for service in (a, b, a, b)
    ]
    callers = [Caller(client, BETA_FLAG, {"key": "someone"}) for client in clients]
    assert all(client.wait_until_ready(CATCH_UP) for client in clients)
    wait_for_all(clients, lambda client: client.stats.stream_connects >= 1, timeout=CATCH_UP)
    # and admin changes made continuously through A
    writer = AdminWriter(a.url, a.admin_token, RAMP_FLAG, COHORT).start()
    try:
        wait_for(lambda: len(writer.acknowledged()) >= 3, timeout=CATCH_UP)
        # When Redis stops
        private_redis.stop()
        down_at = time.monotonic()
        # Then both instances say degraded, and keep answering
        wait_for_all((a, b), lambda service: _is(service, "degraded", "down"), timeout=CATCH_UP)
        wait_for(lambda: len(writer.acknowledged(since=down_at)) >= 3, timeout=CATCH_UP)
        during = _snapshot_version(a, sdk_key)
        # (B's streams too: B re-reads the audit head)
        wait_for_all(clients, lambda client: (client.version or 0) >= during, timeout=CATCH_UP)
        time.sleep(max(0.0, down_at + OUTAGE_SECONDS - time.monotonic()))
        # When Redis comes back (empty, like a replaced node)
        private_redis.start()
        up_at = time.monotonic()
        wait_for_all((a, b), lambda service: _is(service, "ready", "ok"), timeout=CATCH_UP)
        # Then both instances' listeners subscribe again (one per worker process)
        channel = f"flagsvc:changes:db{REDIS_DB}"
        wait_for(lambda: _subscribers(private_redis, channel) == 2, timeout=CATCH_UP)
        wait_for(lambda: len(writer.acknowledged(since=up_at)) >= 3, timeout=CATCH_UP)
    finally:
        writer.stop()
    # and every client ends on the final state, by its stream (polling is a minute away)
    final = _snapshot_version(a, sdk_key)
    # (B hears A's last change through Redis: within seconds, not by the time A answered)
    wait_for(lambda: _snapshot_version(b, sdk_key) == final, timeout=CATCH_UP)
    wait_for_all(clients, lambda client: client.version == final, timeout=CATCH_UP)
    assert writer.statuses() == {200}, writer.statuses()
    imported = [key for attempt in writer.acknowledged() for key in attempt.keys]
    for client in clients:
        assert all(client.is_enabled(BETA_FLAG, {"key": key}) for key in imported)
        assert client.stats.stream_failures == 0, client.stats  # streams never broke
    for caller in callers:
        caller.stop()
    for client in clients:
        client.close()
    # and no change was lost or half-written
    check_all_or_nothing(Stored.read(fresh_database, COHORT), writer.attempts)
    assert a.cli("audit", "verify").startswith("audit chain valid")
