"""PostgreSQL stopped under load, then started again.

While it is down: writes answer 503 with a reason and ``Retry-After`` (never a 500),
``/readyz`` says unavailable, and SDK snapshot reads keep working from the instance's
cache, for clients already connected and for one that starts during the outage. Once
it is back: writes succeed again, every write is either wholly stored with its audit
event or not at all, the audit chain verifies, and SDK clients reach the final state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from flagsvc_sdk import Client

from tests.live import LiveService
from tests.live import start_service
from tests.live_helpers import Caller
from tests.live_helpers import admin_client
from tests.live_helpers import wait_for
from tests.live_helpers import wait_for_all

from .servers import PostgresServer
from .writers import AdminWriter
from .writers import Stored
from .writers import check_all_or_nothing
from .writers import check_state_matches_audit
from .writers import seed_release

pytestmark = pytest.mark.faults

RAMP_FLAG = "dbdown-ramp"
BETA_FLAG = "dbdown-beta"
COHORT = "dbdown-importers"
MEMBER = {"key": "member-0"}
CATCH_UP = 10.0  # seconds: "within seconds"
OUTAGE_SECONDS = 3.0  # PostgreSQL stays down at least this long
SERVICE_ENV = {
    "FLAGSVC_WORKERS": "1",  # one process, so one snapshot cache serves every SDK read
    "FLAGSVC_HEAD_POLL_SECONDS": "0.5",
    "FLAGSVC_STREAM_KEEPALIVE_SECONDS": "1",
    "FLAGSVC_ACCESS_LOG": "0",
}


@pytest.fixture
def service(fresh_database: str) -> Iterator[LiveService]:
    """One instance (no Redis) with a ramp flag and a flag on an imported cohort."""
    live = start_service(fresh_database, env=SERVICE_ENV)
    try:
        with admin_client(live) as admin:
            seed_release(admin, RAMP_FLAG, BETA_FLAG, COHORT)
            added = admin.post(f"/api/v1/cohorts/{COHORT}/members", json={"add": [MEMBER["key"]]})
            assert added.status_code == 200, added.text
        yield live
    finally:
        live.stop()


def _check_write_refused(admin: httpx.Client) -> None:
    """A write while the database is down: 503, a reason, and when to retry."""
    refused = admin.post(f"/api/v1/cohorts/{COHORT}/members", json={"add": ["while-down"]})
    assert refused.status_code == 503, refused.text
    assert refused.json()["message"] == "the database is unreachable; retry"
    assert int(refused.headers["Retry-After"]) > 0


def _check_sdk_reads_served(service: LiveService, sdk_key: str, etag: str, body: bytes) -> None:
    """Snapshot (200 and 304) and server-side evaluation answer from the cache."""
    auth = {"Authorization": f"Bearer {sdk_key}"}
    with httpx.Client(base_url=service.url, headers=auth, timeout=5) as sdk:
        full = sdk.get("/sdk/v1/snapshot")
        assert full.status_code == 200, full.text
        assert full.content == body
        assert sdk.get("/sdk/v1/snapshot", headers={"If-None-Match": etag}).status_code == 304
        evaluated = sdk.post("/sdk/v1/evaluate", json={"context": MEMBER, "flags": [BETA_FLAG]})
        assert evaluated.status_code == 200, evaluated.text
        assert evaluated.json()["results"][BETA_FLAG]["enabled"] is True


def test_database_stopped_under_load__503_cached_sdk_reads_nothing_half_written(
    service: LiveService, private_postgres: PostgresServer, fresh_database: str
) -> None:
    assert service.admin_token
    sdk_key = service.sdk_key("staging")
    clients = [Client(service.url, sdk_key, poll_interval=60, timeout=2, send_metrics=False)]
    callers = [Caller(clients[0], BETA_FLAG, MEMBER)]
    assert clients[0].wait_until_ready(CATCH_UP)
    writer = AdminWriter(service.url, service.admin_token, RAMP_FLAG, COHORT).start()
    admin = admin_client(service)
    try:
        wait_for(lambda: len(writer.acknowledged()) >= 3, timeout=CATCH_UP)
        # When PostgreSQL stops under load
        private_postgres.stop()
        down_at = time.monotonic()
        snapshot = httpx.get(
            f"{service.url}/sdk/v1/snapshot", headers={"Authorization": f"Bearer {sdk_key}"}
        )
        # Then writes get 503 with a reason, readiness says so, nothing answers 500
        _check_write_refused(admin)
        ready = service.get("/readyz")
        assert ready[0] == 503 and json.loads(ready[1])["status"] == "unavailable"
        # and SDK reads keep working from the cache, also for a client starting now
        assert snapshot.status_code == 200, snapshot.text
        _check_sdk_reads_served(service, sdk_key, snapshot.headers["ETag"], snapshot.content)
        late = Client(service.url, sdk_key, poll_interval=60, timeout=2, send_metrics=False)
        clients.append(late)
        assert late.wait_until_ready(CATCH_UP) and late.is_enabled(BETA_FLAG, MEMBER) is True
        callers.append(Caller(late, BETA_FLAG, MEMBER))
        time.sleep(max(0.0, down_at + OUTAGE_SECONDS - time.monotonic()))
        # When PostgreSQL is back
        private_postgres.start()
        up_at = time.monotonic()
        # Then writes succeed again within seconds
        wait_for(lambda: len(writer.acknowledged(since=up_at)) >= 3, timeout=CATCH_UP)
    finally:
        writer.stop()
    outage = [a for a in writer.attempts if down_at <= a.at < up_at]
    assert outage and {a.status for a in outage} <= {200, 503}, {a.status for a in outage}
    assert writer.statuses() <= {200, 503}, writer.statuses()
    # and every write is all-or-nothing, the state is what the audit says, the chain holds
    stored = Stored.read(fresh_database, COHORT)
    check_all_or_nothing(stored, writer.attempts)
    check_state_matches_audit(admin, stored)
    admin.close()
    assert service.cli("audit", "verify").startswith("audit chain valid")
    # and the SDK clients reach the final state, never having raised
    final = int(json.loads(service.get("/sdk/v1/snapshot", sdk_key)[1])["version"])
    wait_for_all(clients, lambda client: client.version == final, timeout=CATCH_UP)
    for caller in callers:
        caller.stop()
    for client in clients:
        client.close()
