"""``/metrics`` and logs of a real ``flagsvc serve`` with two gunicorn workers.

Two workers share nothing, and a scrape reaches one of them: every scrape must still
show the sums over both (prometheus_client's multiprocess mode, in a folder ``serve``
makes). PostgreSQL + Redis, so a change committed by either worker reaches a stream
on either through the broker, with its commit time (the propagation histogram).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live import LiveService

FAST = {"FLAGSVC_STREAM_KEEPALIVE_SECONDS": "0.2", "FLAGSVC_HEAD_POLL_SECONDS": "0.5"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def serve(database_url: str, redis_url: str | None, *serve_args: str, **env: str) -> LiveService:
    """``start_service`` with a patient start: a loaded CI machine boots workers slowly."""
    service = LiveService(database_url, redis_url, env=FAST | env, serve_args=serve_args)
    service.admin_token = service.cli("init", timeout=120) or None
    return service.start(timeout=120)


@pytest.fixture
def two_workers(pg_url, redis_url) -> Iterator[LiveService]:
    # Changes reach the other worker by Redis, as in production; a head poll as fast as
    # FAST's could find a version first, and the version it finds is untimed.
    with serve(pg_url, redis_url, "--workers", "2", FLAGSVC_HEAD_POLL_SECONDS="5") as service:
        yield service


@pytest.fixture
def api(two_workers) -> Iterator[httpx.Client]:
    """An admin API client for ``two_workers``."""
    with _admin(two_workers) as client:
        yield client


def scrape(service: LiveService) -> Samples:
    status, body = service.get("/metrics")
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scraped(service: LiveService, name: str, **labels: str) -> list[float]:
    """``name``'s value in each of several scrapes (reaching either worker)."""
    return [value(scrape(service), name, **labels) for _ in range(8)]


def scrapes_agree(service: LiveService, name: str, expected: float, **labels: str) -> bool:
    """Several scrapes (reaching either worker) all show ``expected``."""
    return scraped(service, name, **labels) == [expected] * 8


def eventually(check, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def _create_flag(api: httpx.Client, key: str) -> httpx.Response:
    objective = api.post(
        "/api/v1/objectives", json={"title": "T", "period": "2026-Q4", "owner": "o"}
    ).json()
    kr = api.post(
        f"/api/v1/objectives/{objective['id']}/key-results",
        json={"title": "K", "metric": "m", "baseline": 0, "target": 1, "unit": "u"},
    ).json()
    body = {"key": key, "name": "F", "flow_item": "feature", "key_result_id": kr["id"]}
    return api.post("/api/v1/flags", json=body, headers={"X-Request-ID": "live-create-1"})


def _next_event(lines: Iterator[str], name: str) -> dict:
    for line in lines:
        if line == f"event: {name}":
            return json.loads(next(lines).removeprefix("data: "))
    raise AssertionError(f"stream ended before {name}")


def _healthy(service: LiveService) -> bool:
    try:
        return service.get("/healthz")[0] == 200
    except OSError:  # a replacement worker still booting: the request timed out
        return False


def _worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def test_two_workers__scrapes_sum_both__stream_change_propagation_timed(two_workers, api):
    service = two_workers
    sdk = {"Authorization": f"Bearer {service.sdk_key('production')}"}
    for _ in range(20):
        assert httpx.get(f"{service.url}/readyz", timeout=5).status_code == 200  # new connections
    assert scrapes_agree(service, "flagsvc_http_requests_total", 20, **_readyz())
    assert ("python_gc_objects_collected_total", frozenset({("generation", "0")})) not in scrape(
        service
    )  # the multiprocess registry, not one worker's default one
    with httpx.stream("GET", f"{service.url}/sdk/v1/stream", headers=sdk, timeout=10) as stream:
        lines = stream.iter_lines()
        _next_event(lines, "hello")
        assert scrapes_agree(service, "flagsvc_sdk_streams_open", 1)
        assert _create_flag(api, "live-flag").status_code == 201
        assert _next_event(lines, "change")["environment"] == "production"
        assert eventually(
            lambda: value(scrape(service), "flagsvc_change_propagation_seconds_count") >= 1
        )
    samples = scrape(service)
    assert 0 < samples[("flagsvc_change_propagation_seconds_sum", frozenset())] < 1.0
    assert value(samples, "flagsvc_audit_events_total", action="flag.created") == 1
    stream_opened = {"method": "GET", "endpoint": "/sdk/v1/stream", "status": "200"}
    assert value(samples, "flagsvc_http_requests_total", **stream_opened) == 1
    stream_timed = (
        "flagsvc_http_request_duration_seconds_count",
        _labels(endpoint="/sdk/v1/stream"),
    )
    assert stream_timed not in samples
    assert eventually(lambda: scrapes_agree(service, "flagsvc_sdk_streams_open", 0))


def test_two_workers__worker_killed_with_open_stream__its_gauge_stops_counting(two_workers):
    service = two_workers
    assert service.process is not None
    sdk = {"Authorization": f"Bearer {service.sdk_key('production')}"}
    with httpx.stream("GET", f"{service.url}/sdk/v1/stream", headers=sdk, timeout=10) as stream:
        _next_event(stream.iter_lines(), "hello")
        assert scraped(service, "flagsvc_sdk_streams_open") == [1] * 8
        old = _worker_pids(service.process.pid)
        for pid in old:
            os.kill(pid, signal.SIGKILL)  # a crash: no goodbye, no decrement
        assert eventually(lambda: len(set(_worker_pids(service.process.pid)) - set(old)) == 2, 30)
        assert eventually(lambda: _healthy(service), seconds=60)  # replacements booted
        assert scrapes_agree(service, "flagsvc_sdk_streams_open", 0)  # child_exit retired it


def test_two_workers__every_log_line_is_json__access_line_carries_request_id_and_actor(
    two_workers, api
):
    service = two_workers
    response = _create_flag(api, "logged-flag")
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == "live-create-1"
    (event,) = api.get("/api/v1/audit?action=flag.created").json()["items"]
    assert event["request_id"] == "live-create-1"
    assert eventually(lambda: "live-create-1" in service.logs())
    lines = [json.loads(line) for line in service.logs().splitlines() if line.strip()]
    (access,) = [line for line in lines if line.get("request_id") == "live-create-1"]
    assert access["logger"] == "flagsvc.access"
    assert access["actor"] == "first-admin"
    assert (access["method"], access["path"], access["status"]) == ("POST", "/api/v1/flags", 201)
    assert {"timestamp", "level", "message", "duration_ms"} <= access.keys()
    assert any(line["logger"] == "gunicorn.error" for line in lines)  # the master's lines too
    assert service.admin_token not in service.logs()


def test_serve_with_scheduler__scheduler_counts_reach_metrics(pg_url, tmp_path):
    with serve(pg_url, None, "--with-scheduler") as service:
        assert eventually(
            lambda: value(scrape(service), "flagsvc_scheduler_runs_total", outcome="ok") >= 1
        )
        lines = [json.loads(line) for line in service.logs().splitlines() if line.strip()]
        assert lines


def _admin(service: LiveService) -> httpx.Client:
    return httpx.Client(
        base_url=service.url,
        headers={"Authorization": f"Bearer {service.admin_token}"},
        timeout=10,
    )


def _readyz() -> dict[str, str]:
    return {"method": "GET", "endpoint": "/readyz", "status": "200"}


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset({"method": "GET", **labels}.items())
