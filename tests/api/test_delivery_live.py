"""Two live services (gunicorn, PostgreSQL, Redis): a change committed through A stops
B's 304s for the old ETag within a second; B answers its 304s without the database."""

from __future__ import annotations

import time

import httpx

from tests import live_helpers
from tests.live import start_services
from tests.live_helpers import admin_client

FLAG = "live-delivery"
# a head poll far longer than the bound checked: only the broker can make it in time
SLOW_POLL = {"FLAGSVC_HEAD_POLL_SECONDS": "30"}


def _kill(service) -> None:
    with admin_client(service) as api:
        path = f"/api/v1/flags/{FLAG}/environments/production/kill"
        assert api.post(path).status_code == 200


def test_two_instances__change_through_a__b_stops_304_within_a_second(pg_url, redis_url):
    with start_services(2, pg_url, redis_url, env=SLOW_POLL) as (a, b):
        with admin_client(a) as api:
            live_helpers.create_flag(api, FLAG, stage="off")
        headers = {"Authorization": f"Bearer {a.sdk_key('production')}"}
        with httpx.Client(base_url=b.url, headers=headers, timeout=5) as sdk_b:
            etag = sdk_b.get("/sdk/v1/snapshot").headers["etag"]
            for _ in range(20):  # B's listener is subscribed once it answers from memory
                assert (
                    sdk_b.get("/sdk/v1/snapshot", headers={"If-None-Match": etag}).status_code
                    == 304
                )
            _kill(a)
            started = time.monotonic()
            while (
                answer := sdk_b.get("/sdk/v1/snapshot", headers={"If-None-Match": etag})
            ).status_code == 304:
                assert time.monotonic() - started < 1.0, "B still answers 304 after 1 s"
                time.sleep(0.01)
            assert answer.status_code == 200
            assert answer.json()["flags"][FLAG]["killed"] is True
            assert answer.headers["etag"] != etag
