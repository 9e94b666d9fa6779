"""Deltas over real HTTP (gunicorn, PostgreSQL, Redis, the SDK): one member added to a
large cohort costs each SDK a patch of a few hundred bytes, not the snapshot again.

Bytes are counted on the wire, below httpx's decoding (a gzip snapshot counts as the
compressed bytes it took), by a transport that wraps the SDK's own.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
from flagsvc_sdk import Client
from sqlalchemy import create_engine
from sqlalchemy import text

from tests import live_helpers
from tests.live import start_service
from tests.live_helpers import admin_client
from tests.live_helpers import wait_for

FLAG = "delta-flag"
COHORT = "delta-big"
MEMBERS = 200_000
SNAPSHOT = "/sdk/v1/snapshot"


class CountingTransport(httpx.HTTPTransport):
    """Counts the bytes of every snapshot answer as they came over the socket."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[tuple[int, int, dict[str, str]]] = []
        self._guard = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path != SNAPSHOT:
            return response
        raw = b"".join(response.stream)  # type: ignore[union-attr]  # not yet decoded
        response.close()
        with self._guard:
            self.answers.append((response.status_code, len(raw), dict(request.url.params)))
        return httpx.Response(response.status_code, headers=response.headers, content=raw)


def _flag_on_cohort(svc: Any, admin: httpx.Client, pg_url: str, members: int) -> None:
    """``FLAG`` in early access in production on ``COHORT``, which has ``members``."""
    live_helpers.create_cohort(admin, COHORT)
    _seed_members(pg_url, members)
    live_helpers.create_flag(admin, FLAG, environment="production", stage="off")
    live_helpers.set_cohorts(admin, FLAG, "production", [COHORT])
    moved = admin.post(
        f"{live_helpers.state_path(FLAG, 'production')}/stage", json={"stage": "early_access"}
    )
    assert moved.status_code == 200, moved.text


def _seed_members(pg_url: str, count: int) -> None:
    """``count`` members straight into the cohort (an import would take minutes)."""
    engine = create_engine(pg_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "insert into cohort_members (cohort_id, user_key, source, added_at) "
                "select c.id, 'member-' || lpad(n::text, 7, '0'), 'import', now() "
                "from cohorts c, generate_series(1, :count) n where c.key = :key"
            ),
            {"count": count, "key": COHORT},
        )
        connection.execute(  # what an import keeps with the rows
            text("update cohorts set member_count = member_count + :count where key = :key"),
            {"count": count, "key": COHORT},
        )
    engine.dispose()


def test_one_member_added_to_a_large_cohort__sdk_downloads_a_small_patch(pg_url, redis_url):
    with start_service(pg_url, redis_url, env={"FLAGSVC_STREAM_KEEPALIVE_SECONDS": "1"}) as svc:
        # Given a flag in early access on a 200,000-member cohort, and an SDK holding it
        with admin_client(svc) as admin:
            _flag_on_cohort(svc, admin, pg_url, MEMBERS)
            counting = CountingTransport()
            client = Client(svc.url, svc.sdk_key("production"), transport=counting, timeout=30)
            try:
                assert client.wait_until_ready(60)
                assert client.is_enabled(FLAG, {"key": "member-0000001"})
                full = [size for status, size, _ in counting.answers if status == 200]
                assert len(full) == 1 and full[0] > 300_000  # gzip of 200,000 members
                wait_for(lambda: client.stats.stream_connects >= 1, timeout=30)
                # When one member is added
                added = admin.post(f"/api/v1/cohorts/{COHORT}/members", json={"add": ["newbie"]})
                assert added.status_code == 200, added.text
                # Then the SDK sees it, from a patch of a few hundred bytes
                wait_for(lambda: client.is_enabled(FLAG, {"key": "newbie"}), timeout=30)
            finally:
                client.close()
        status, size, params = counting.answers[-1]
        assert status == 200 and "since" in params and "base" in params
        assert size < 2_000, f"{size} bytes for one member"
        assert client.stats.patches_applied == 1 and client.stats.patches_refused == 0
        assert client.is_enabled(FLAG, {"key": "member-0200000"})


def test_old_sdk_without_the_capability__full_snapshot_even_with_since(pg_url, redis_url):
    with start_service(pg_url, redis_url) as svc:
        with admin_client(svc) as admin:  # a snapshot larger than a patch of one flag
            _flag_on_cohort(svc, admin, pg_url, 2_000)
        headers = {"Authorization": f"Bearer {svc.sdk_key('production')}"}
        with httpx.Client(base_url=svc.url, headers=headers, timeout=10) as sdk:
            first = sdk.get(SNAPSHOT)
            version, base = first.json()["version"], first.headers["Flagsvc-Content-Hash"]
            with admin_client(svc) as admin:
                killed = admin.post(f"{live_helpers.state_path(FLAG, 'production')}/kill")
                assert killed.status_code == 200
            params: dict[str, Any] = {"since": version, "base": base}
            old = sdk.get(SNAPSHOT, params=params)
            new = sdk.get(SNAPSHOT, params=params, headers={"Flagsvc-Delta": "1"})
        assert "flags" in old.json() and "patches" not in old.json()
        assert len(new.content) < len(old.content) / 10
        assert new.json()["patches"][0]["flags_upserted"][FLAG]["killed"] is True
        assert old.headers["ETag"] == new.headers["ETag"]
