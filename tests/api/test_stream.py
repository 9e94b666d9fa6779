"""``GET /sdk/v1/stream`` against real service processes (gunicorn, as deployed).

SQLite, one instance: the protocol (headers, retry, hello, change, keep-alive), no
event for another environment's change, the open-stream count back to 0 after a
disconnect, the per-process cap. PostgreSQL + Redis, two instances: a change made
through A reaches a stream on B within a second, and B's snapshot is not rebuilt
by A. Redis configured but unreachable: the instance still serves and streams.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from flagsvc.delivery.watch import EnvironmentWatch
from tests import live_helpers
from tests.conftest import create_flag
from tests.live import LiveService
from tests.live import free_port
from tests.live import start_service
from tests.live import start_services
from tests.live_helpers import admin_client

FAST = {"FLAGSVC_STREAM_KEEPALIVE_SECONDS": "0.2", "FLAGSVC_HEAD_POLL_SECONDS": "0.5"}
FLAG = "stream-flag"


@dataclass
class Event:
    kind: str  # "retry", "comment", or the event name
    data: Any


class EventReader:
    """Parses SSE off an httpx streaming response, one event (or comment) at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()

    def next(self) -> Event:
        fields: dict[str, str] = {}
        for line in self._lines:
            if line == "":
                if fields:
                    return _event(fields)
                continue
            name, _, value = line.partition(":")
            fields[name or "comment"] = value.strip()
            if name == "":
                return Event("comment", value.strip())
        raise EOFError("stream ended")

    def next_named(self, seconds: float) -> Event | None:
        """The next named event within ``seconds`` (keep-alives skipped), else None."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            event = self.next()
            if event.kind not in ("comment", "retry"):
                return event
        return None


def _event(fields: dict[str, str]) -> Event:
    if "event" in fields:
        return Event(fields["event"], json.loads(fields.get("data", "null")))
    return Event("retry", int(fields["retry"])) if "retry" in fields else Event("comment", "")


def _create_flag(service: LiveService) -> None:
    with admin_client(service) as api:
        live_helpers.create_flag(api, FLAG, stage="off")


def _toggle_kill(service: LiveService, environment: str) -> bool:
    """Kill the flag in ``environment`` if it runs, else resume it; True if now killed."""
    path = f"/api/v1/flags/{FLAG}/environments/{environment}"
    with admin_client(service) as api:
        killed = not api.get(path).json()["killed"]
        response = api.post(f"{path}/{'kill' if killed else 'resume'}")
        assert response.status_code == 200, response.text
    return killed


def _streams_open(service: LiveService) -> int:
    return json.loads(service.get("/readyz")[1])["streams"]["open"]


@pytest.fixture
def stream_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(10, read=5)) as client:
        yield client


def _open(client: httpx.Client, service: LiveService, sdk_key: str) -> Any:
    return client.stream(
        "GET", f"{service.url}/sdk/v1/stream", headers={"Authorization": f"Bearer {sdk_key}"}
    )


@pytest.fixture(scope="module")
def sqlite_service(tmp_path_factory) -> Iterator[LiveService]:
    """One SQLite instance for the protocol tests, with a flag in every environment."""
    path = tmp_path_factory.mktemp("live") / "live.db"
    service = start_service(f"sqlite:///{path}", env=FAST)
    _create_flag(service)
    service.test_sdk_key = service.sdk_key("production")  # type: ignore[attr-defined]
    yield service
    service.stop()


def _get_snapshot(service: LiveService, etag: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {service.test_sdk_key}"}  # type: ignore[attr-defined]
    if etag:
        headers["If-None-Match"] = etag
    return httpx.get(f"{service.url}/sdk/v1/snapshot", headers=headers)


def test_stream__connect__headers_retry_then_hello_with_snapshot_version(
    sqlite_service, stream_client
):
    with _open(stream_client, sqlite_service, sqlite_service.test_sdk_key) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        reader = EventReader(response)
        assert reader.next() == Event("retry", 1000)
        hello = reader.next()
        version = _get_snapshot(sqlite_service).json()["version"]
        keepalive = float(FAST["FLAGSVC_STREAM_KEEPALIVE_SECONDS"])  # announced: SDKs size
        assert hello == Event(  # their silence timeout from it
            "hello", {"environment": "production", "version": version, "keepalive": keepalive}
        )


def test_stream__idle__keep_alive_comments_at_the_configured_interval(
    sqlite_service, stream_client
):
    with _open(stream_client, sqlite_service, sqlite_service.test_sdk_key) as response:
        reader = EventReader(response)
        reader.next_named(1.0)
        started = time.monotonic()
        assert reader.next() == Event("comment", "keep-alive")
        assert reader.next() == Event("comment", "keep-alive")
        assert time.monotonic() - started < 1.0  # configured 0.2 s, not 15 s


def test_stream__change_in_other_environment__no_event(sqlite_service, stream_client):
    with _open(stream_client, sqlite_service, sqlite_service.test_sdk_key) as response:
        reader = EventReader(response)
        reader.next_named(1.0)
        _toggle_kill(sqlite_service, "staging")
        assert reader.next_named(1.0) is None  # nothing for production SDKs to fetch


def test_stream__change_in_own_environment__event_within_a_second_then_new_snapshot(
    sqlite_service, stream_client
):
    etag = _get_snapshot(sqlite_service).headers["etag"]
    with _open(stream_client, sqlite_service, sqlite_service.test_sdk_key) as response:
        reader = EventReader(response)
        hello = reader.next_named(1.0)
        started = time.monotonic()
        killed = _toggle_kill(sqlite_service, "production")
        change = reader.next_named(2.0)
        assert change is not None and time.monotonic() - started < 1.0
        assert change.kind == "change" and change.data["environment"] == "production"
        assert change.data["version"] > hello.data["version"]
        snapshot = _get_snapshot(sqlite_service, etag)
        assert snapshot.status_code == 200
        assert snapshot.json()["version"] == change.data["version"]
        assert snapshot.json()["flags"][FLAG]["killed"] is killed
        assert _streams_open(sqlite_service) >= 1  # earlier tests' may still be closing


def test_stream__client_disconnects__subscription_closed_count_back_to_zero(
    sqlite_service, stream_client
):
    sdk_key = sqlite_service.sdk_key("production")
    for _ in range(3):
        with _open(stream_client, sqlite_service, sdk_key) as response:
            EventReader(response).next()
    deadline = time.monotonic() + 5
    while _streams_open(sqlite_service) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _streams_open(sqlite_service) == 0


def test_stream__over_the_cap__503_with_retry_after(tmp_path, stream_client):
    env = {**FAST, "FLAGSVC_MAX_STREAMS": "1"}
    with start_service(f"sqlite:///{tmp_path / 'cap.db'}", env=env) as service:
        sdk_key = service.sdk_key("production")
        with _open(stream_client, service, sdk_key) as first:
            EventReader(first).next()
            # streamed, so a stream let in by mistake fails here instead of being read forever
            # (its keep-alives would reset any read timeout)
            with httpx.stream(
                "GET", f"{service.url}/sdk/v1/stream",
                headers={"Authorization": f"Bearer {sdk_key}"}, timeout=10,
            ) as refused:  # fmt: skip
                assert refused.status_code == 503
                assert int(refused.headers["retry-after"]) > 0
                assert "stream" in json.loads(refused.read())["message"]


def test_stream__admin_token__403(sqlite_service):
    status, _ = sqlite_service.get("/sdk/v1/stream", token=sqlite_service.admin_token)
    assert status == 403


def test_stream__redis_unreachable__degraded_but_serving_and_streaming(tmp_path, stream_client):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with start_service(f"sqlite:///{tmp_path / 'r.db'}", dead_redis, env=FAST) as service:
        ready = json.loads(service.get("/readyz")[1])
        assert ready["status"] == "degraded" and ready["checks"]["redis"] == "down"
        _create_flag(service)
        sdk_key = service.sdk_key("production")
        status, body = service.get("/sdk/v1/snapshot", token=sdk_key)
        assert status == 200 and FLAG in json.loads(body)["flags"]
        with _open(stream_client, service, sdk_key) as response:
            reader = EventReader(response)
            hello = reader.next_named(2.0)
            _toggle_kill(service, "production")
            change = reader.next_named(2.0)
            assert change is not None and change.data["version"] > hello.data["version"]


def test_live_service__killed_mid_stream_then_restarted__stream_ends_and_port_serves_again(
    tmp_path, stream_client
):
    with start_service(f"sqlite:///{tmp_path / 'k.db'}", env=FAST) as service:
        sdk_key = service.sdk_key("production")
        with _open(stream_client, service, sdk_key) as response:
            reader = EventReader(response)
            reader.next_named(2.0)
            service.kill()
            with pytest.raises((httpx.HTTPError, EOFError)):
                for _ in range(100):
                    reader.next()
        assert service.process is None
        service.restart()
        with _open(stream_client, service, sdk_key) as response:
            assert EventReader(response).next_named(2.0).kind == "hello"


# --- in-process: the stream's decision and the operator view of streams -----------------


def test_environment_watch__other_environment_changes__no_event_own_change__event(app, engineer):
    create_flag(engineer, FLAG)
    state = app.extensions["flagsvc"]
    subscription = state.broker.subscribe()
    watch = EnvironmentWatch(state.snapshots, state.db.read, "production", subscription)
    hello = watch.hello()
    engineer.post(f"/api/v1/flags/{FLAG}/environments/staging/kill")
    assert watch.next_change(0.3) is None
    engineer.post(f"/api/v1/flags/{FLAG}/environments/production/kill")
    changed = watch.next_change(2)
    assert changed is not None and changed > hello
    subscription.close()


def test_snapshot_cache__change_with_open_stream__built_once_before_the_stream_wakes(app, engineer):
    create_flag(engineer, FLAG)
    state = app.extensions["flagsvc"]
    watch = EnvironmentWatch(state.snapshots, state.db.read, "production", state.broker.subscribe())
    watch.hello()
    builds = state.snapshots.builds
    engineer.post(f"/api/v1/flags/{FLAG}/environments/production/kill")
    assert watch.subscription.wait(2) is not None
    assert state.snapshots.builds == builds + 1  # the broker's prepare did it, once
    watch.close()
    engineer.post(f"/api/v1/flags/{FLAG}/environments/production/resume")
    time.sleep(0.1)
    assert state.snapshots.builds == builds + 1  # nobody streams: nothing built eagerly


def test_readyz__embedded__ready_without_redis_check(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["status"] == "ready"
    assert response.json["checks"] == {"database": "ok"}
    assert response.json["streams"] == {"open": 0, "limit": 2000}


# --- PostgreSQL + Redis, two instances -------------------------------------------------


def _builds(service: LiveService) -> int:
    metrics = service.get("/metrics")[1].decode()
    count = "flagsvc_snapshot_build_duration_seconds_count"
    line = next(x for x in metrics.splitlines() if x.startswith(count))
    return int(float(line.split()[1]))


def _changes_arrive(reader: EventReader, changed_through: LiveService, times: int) -> Event:
    """Toggle the kill switch ``times`` times; each change event must come within 1 s."""
    last = reader.next_named(2.0)
    assert last is not None
    for _ in range(times):
        started = time.monotonic()
        _toggle_kill(changed_through, "production")
        change = reader.next_named(2.0)
        assert change is not None and change.kind == "change"
        assert time.monotonic() - started < 1.0
        assert change.data["version"] > last.data["version"]
        last = change
    return last


def test_stream__two_instances_postgres_redis__change_on_a_reaches_stream_on_b(
    pg_url, redis_url, stream_client
):
    with start_services(2, pg_url, redis_url, env=FAST) as (a, b):
        assert json.loads(b.get("/readyz")[1])["checks"]["redis"] == "ok"
        _create_flag(a)
        sdk_key = a.sdk_key("production")
        booted = _builds(a)  # each worker warms up at boot (delivery.warmup)
        with _open(stream_client, b, sdk_key) as response:
            last = _changes_arrive(EventReader(response), a, times=3)
        status, body = a.get("/sdk/v1/snapshot", token=sdk_key)
        assert status == 200 and json.loads(body)["version"] == last.data["version"]
        assert _builds(a) == booted  # B built it; A served the bytes B shared through Redis
