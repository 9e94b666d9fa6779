"""Operator endpoints: ``/metrics`` moves with requests, changes, snapshot builds, the
scheduler and SDK reports; ``/healthz``; the access log line and request context.

The metrics live in the process-wide default registry, shared by every app a test
run builds, so each test compares a value before and after its action.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from collections.abc import Iterator
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from flagsvc.observability import logging as observed_logging
from flagsvc.services import audit
from flagsvc.services import scheduler
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Change
from flagsvc.storage.db import Database
from tests.api import flow_history
from tests.api.flow_history import flag_path
from tests.api.flow_history import move

FLAG = "observed-flag"
FLAG_RULE = "/api/v1/flags/<string:flag_key>"


def scrape(client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics``: (name, labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    families = text_string_to_metric_families(response.data.decode())
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def kr(engineer) -> int:
    return flow_history.objective(engineer, "Observed", ["k"])[1][0]


@pytest.fixture
def flag(engineer, kr) -> str:
    flow_history.create_flag(engineer, FLAG, "feature", kr)
    return FLAG


def test_healthz__up__ok(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_metrics__stream_gauges__present(client):
    samples = scrape(client)
    assert value(samples, "flagsvc_sdk_streams_limit") == 2000
    assert value(samples, "flagsvc_sdk_streams_open") >= 0


def test_metrics__request__counted_by_url_rule_not_path(client, viewer):
    before = scrape(client)
    assert viewer.get("/api/v1/flags/no-such-flag").status_code == 404
    after = scrape(client)
    counted = {"method": "GET", "endpoint": FLAG_RULE, "status": "404"}
    assert value(after, "flagsvc_http_requests_total", **counted) == (
        value(before, "flagsvc_http_requests_total", **counted) + 1
    )
    timed = {"method": "GET", "endpoint": FLAG_RULE}
    count = "flagsvc_http_request_duration_seconds_count"
    assert value(after, count, **timed) == value(before, count, **timed) + 1
    assert not any("no-such-flag" in str(labels) for _, labels in after)


def test_metrics__unknown_path_and_method__bounded_labels(client):
    before = scrape(client)
    client.get("/nowhere/12345")
    client.open("/healthz", method="BREW")
    after = scrape(client)
    unmatched = {"method": "GET", "endpoint": "<unmatched>", "status": "404"}
    assert value(after, "flagsvc_http_requests_total", **unmatched) == (
        value(before, "flagsvc_http_requests_total", **unmatched) + 1
    )
    other = {"method": "OTHER", "endpoint": "<unmatched>", "status": "405"}
    assert value(after, "flagsvc_http_requests_total", **other) == (
        value(before, "flagsvc_http_requests_total", **other) + 1
    )


def test_metrics__change__audit_event_counted_by_action(client, flag, engineer):
    before = scrape(client)
    move(engineer, flag, "early_access")
    after = scrape(client)
    action = {"action": "flag.stage_changed"}
    assert value(after, "flagsvc_audit_events_total", **action) == (
        value(before, "flagsvc_audit_events_total", **action) + 1
    )


def test_metrics__rolled_back_audit_event__not_counted(app, client, clock):
    before = scrape(client)
    database = app.extensions["flagsvc"].db
    with pytest.raises(RuntimeError), database.write() as session:
        subject = audit.Subject("test", "rolled-back")
        audit.record(session, Change(SYSTEM, clock(), "t"), "test.rolled_back", subject, None, {})
        raise RuntimeError("the transaction fails after recording")
    after = scrape(client)
    assert value(after, "flagsvc_audit_events_total", action="test.rolled_back") == value(
        before, "flagsvc_audit_events_total", action="test.rolled_back"
    )


def test_metrics__snapshot_fetch_after_change__build_timed(client, flag, sdk):
    before = scrape(client)
    assert sdk.get("/sdk/v1/snapshot").status_code == 200
    after = scrape(client)
    builds = "flagsvc_snapshot_build_duration_seconds_count"
    assert value(after, builds) == value(before, builds) + 1
    assert value(after, "flagsvc_snapshot_build_duration_seconds_sum") > value(
        before, "flagsvc_snapshot_build_duration_seconds_sum"
    )


def test_metrics__sdk_report__evaluations_by_environment(client, flag, sdk):
    before = scrape(client)
    at = "2026-10-01T08:00:00Z"
    report = [
        {"flag": flag, "count": 40, "last_evaluated_at": at},
        {"flag": "unknown-flag", "count": 7, "last_evaluated_at": at},  # ignored: not counted
    ]
    assert sdk.post("/sdk/v1/metrics", json={"evaluations": report}).status_code == 202
    after = scrape(client)
    name, env = "flagsvc_sdk_evaluations_total", {"environment": "production"}
    assert value(after, name, **env) == value(before, name, **env) + 40


def test_metrics__scheduler_pass__runs_and_launches_by_outcome(
    app, client, flag, engineer, marketing, clock
):
    flow_history.make_ready(marketing, flag)
    move(engineer, flag, "early_access")
    at = (clock.now + timedelta(hours=1)).isoformat()
    assert marketing.put(f"{flag_path(flag)}/launch", json={"launch_at": at}).status_code == 200
    clock.advance(hours=2)
    before = scrape(client)
    (outcome,) = scheduler.run_due_launches(app.extensions["flagsvc"].db, clock)
    assert outcome.ran
    after = scrape(client)
    for name, labels in (
        ("flagsvc_scheduler_runs_total", {"outcome": "ok"}),
        ("flagsvc_scheduler_launches_total", {"outcome": "ran"}),
        ("flagsvc_audit_events_total", {"action": "flag.launch_ran"}),
    ):
        assert value(after, name, **labels) == value(before, name, **labels) + 1, name


def test_metrics__scheduler_pass_database_down__one_failed_run_no_spin(client, clock):
    unreachable = Database("postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2")
    before = scrape(client)
    started = time.monotonic()
    assert scheduler.run_due_launches(unreachable, clock) == []
    assert time.monotonic() - started < 10  # the pass ends instead of retrying forever
    after = scrape(client)
    failed = {"outcome": "failed"}
    assert value(after, "flagsvc_scheduler_runs_total", **failed) == (
        value(before, "flagsvc_scheduler_runs_total", **failed) + 1
    )
    assert value(after, "flagsvc_scheduler_launches_total", **failed) == value(
        before, "flagsvc_scheduler_launches_total", **failed
    )  # nothing was claimed, so no launch failed
    unreachable.dispose()


# --- logs -----------------------------------------------------------------------------


@pytest.fixture
def json_log() -> Iterator[Callable[[], list[dict]]]:
    """The root logger's lines so far, each parsed as JSON (fails on a non-JSON line)."""
    lines: list[str] = []

    class Collect:
        def write(self, text: str) -> None:
            lines.extend(line for line in text.splitlines() if line)

        def flush(self) -> None:
            pass

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    observed_logging.configure("json", "INFO", stream=Collect())  # type: ignore[arg-type]
    yield lambda: [json.loads(line) for line in lines]
    root.handlers[:] = handlers
    root.setLevel(level)


def _access_lines(lines: list[dict], method: str, path: str) -> list[dict]:
    return [
        line
        for line in lines
        if line["logger"] == "flagsvc.access" and (line["method"], line["path"]) == (method, path)
    ]


def test_access_log__request__json_with_request_id_actor_and_no_secret(
    engineer, kr, secrets, json_log, viewer
):
    body = {"key": "logged-flag", "name": "F", "flow_item": "feature", "key_result_id": kr}
    response = engineer.post("/api/v1/flags", json=body, headers={"X-Request-ID": "trace-42"})
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == "trace-42"
    (event,) = viewer.get("/api/v1/audit?action=flag.created&flag=logged-flag").json["items"]
    assert event["request_id"] == "trace-42"
    lines = json_log()
    (line,) = _access_lines(lines, "POST", "/api/v1/flags")
    assert line["request_id"] == "trace-42"
    assert line["actor"] == "engineer-token"
    assert line["status"] == 201
    assert (line["level"], line["logger"]) == ("INFO", "flagsvc.access")
    assert line["duration_ms"] >= 0 and line["timestamp"]
    assert secrets["engineer"] not in json.dumps(lines)


def test_access_log__probe__debug_only(client, json_log):
    client.get("/healthz")
    assert _access_lines(json_log(), "GET", "/healthz") == []


def test_access_log__sdk_poll__200_logged_304_debug_only_either_path(sdk, json_log):
    first = sdk.get("/sdk/v1/snapshot", headers={"X-Request-ID": "poll-flask"})  # Flask
    second = sdk.get("/sdk/v1/snapshot", headers={"X-Request-ID": "poll-fast"})  # fast path
    etag = {"If-None-Match": first.headers["ETag"]}
    assert sdk.get("/sdk/v1/snapshot", headers=etag).status_code == 304
    assert (first.status_code, second.status_code) == (200, 200)
    lines = _access_lines(json_log(), "GET", "/sdk/v1/snapshot")
    assert [(x["request_id"], x["status"]) for x in lines] == [
        ("poll-flask", 200),
        ("poll-fast", 200),
    ]  # the 304 ("nothing changed") is counted, not logged at INFO
    assert lines[0]["actor"] == lines[1]["actor"] and lines[0]["actor"].startswith("sdk-key:")
