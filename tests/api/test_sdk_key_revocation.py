"""A revoked SDK key, on two real instances sharing PostgreSQL and Redis.

Revoked through instance A (API) or the CLI, the key is refused by instance B within
a second, not after B's 5 s SDK-key cache, and the stream it holds on B ends.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.api.test_stream import FAST
from tests.api.test_stream import EventReader
from tests.live import LiveService
from tests.live import start_services
from tests.live_helpers import admin_client


def _refused_within(service: LiveService, key: str, seconds: float) -> float:
    """Seconds until ``service`` answers 401 to ``key``; fails after ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if service.get("/sdk/v1/snapshot", token=key)[0] == 401:
            return time.monotonic() - started
        time.sleep(0.01)
    pytest.fail(f"{service.url} still accepts the revoked key after {seconds} s")


def _stream_ends(reader: EventReader, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    with pytest.raises(EOFError):
        while time.monotonic() < deadline:
            reader.next()
    assert time.monotonic() < deadline, "the stream did not end"


def test_revoked_through_a_or_the_cli__b_refuses_within_a_second_and_ends_its_stream(
    pg_url, redis_url
):
    with start_services(2, pg_url, redis_url, env=FAST) as (a, b):
        _revoke_through_the_api(a, b)
        _revoke_with_the_cli(b)


def _revoke_through_the_api(a: LiveService, b: LiveService) -> None:
    with admin_client(a) as api:
        created = api.post("/api/v1/environments/production/sdk-keys").json()
        key = created["sdk_key"]
        assert b.get("/sdk/v1/snapshot", token=key)[0] == 200  # B now caches it for 5 s
        headers = {"Authorization": f"Bearer {key}"}
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=5)) as sse,
            sse.stream("GET", f"{b.url}/sdk/v1/stream", headers=headers) as stream,
        ):
            reader = EventReader(stream)
            assert reader.next_named(2.0) is not None  # hello
            revoked = api.delete(f"/api/v1/environments/production/sdk-keys/{created['id']}")
            assert revoked.status_code == 200
            assert _refused_within(b, key, 1.0) < 1.0
            _stream_ends(reader, 1.0)
        listed = api.get("/api/v1/environments/production/sdk-keys").json()
    assert next(k for k in listed if k["id"] == created["id"])["last_used_at"]


def _revoke_with_the_cli(b: LiveService) -> None:
    key = b.sdk_key("staging")
    assert b.get("/sdk/v1/snapshot", token=key)[0] == 200
    newest = b.cli("list-sdk-keys", "--environment", "staging").splitlines()[0]
    key_id, prefix = newest.split("\t")[:2]
    assert key.startswith(prefix.rstrip("…"))
    b.cli("revoke-sdk-key", "--environment", "staging", "--id", key_id)
    assert _refused_within(b, key, 1.0) < 1.0
