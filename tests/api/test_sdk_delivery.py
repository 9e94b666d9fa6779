"""The SDK read path's costs and encodings, in-process on SQLite and PostgreSQL.

A 304 asks the database nothing while nothing changes (statements counted on the
engines); a change reaches the 304 path at once on the instance that made it, and
on another instance through the broker, or within the head-poll interval when the
broker's message is lost; gzip is compressed once per version and negotiated by
``Accept-Encoding`` with ``Vary``. Two live services: tests/api/test_delivery_live.py.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from flagsvc import create_app
from flagsvc.api.sdk import accepts_gzip
from flagsvc.state import AppState
from tests.conftest import Caller
from tests.conftest import create_flag

FLAG = "delivery-flag"
KILL = f"/api/v1/flags/{FLAG}/environments/production/kill"
RESUME = f"/api/v1/flags/{FLAG}/environments/production/resume"


def _state(app: Any) -> AppState:
    return app.extensions["flagsvc"]  # type: ignore[no-any-return]


@contextmanager
def _statements(state: AppState) -> Iterator[list[str]]:
    """Every SQL statement the app's engines run inside the block."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engines = {id(e): e for e in (state.db.write_engine, state.db.read_engine)}
    targets = [getattr(e, "engine", e) for e in engines.values()]
    for engine in targets:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        for engine in targets:
            event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
def app_config() -> dict[str, Any]:
    """The head re-read every 30 s: on a loaded machine 2 s can pass between two requests,
    and a due re-read sends a poll to Flask (and the database) by design."""
    return {"head_poll_seconds": 30.0}


def _fetch(caller: Caller, etag: str | None = None, encoding: str | None = None) -> Any:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if encoding:
        headers["Accept-Encoding"] = encoding
    return caller.get("/sdk/v1/snapshot", headers=headers)


def test_snapshot_304__nothing_changed__no_database_statement(app, sdk, engineer):
    create_flag(engineer, FLAG)
    etag = _fetch(sdk).headers["ETag"]
    with _statements(_state(app)) as statements:
        answers = [_fetch(sdk, etag).status_code for _ in range(20)]
    assert answers == [304] * 20
    assert statements == []


def test_snapshot__own_change__next_poll_200_without_waiting(sdk, engineer):
    create_flag(engineer, FLAG)
    etag = _fetch(sdk).headers["ETag"]
    assert engineer.post(KILL).status_code == 200
    response = _fetch(sdk, etag)
    assert response.status_code == 200 and response.json["flags"][FLAG]["killed"] is True


def test_snapshot__change_by_another_process_no_broker__seen_within_the_head_poll(
    database_url, sdk, engineer, secrets
):
    """Without Redis, nobody tells B: the head's re-read (every 0.3 s here) bounds staleness."""
    create_flag(engineer, FLAG)
    config = {"database_url": database_url, "testing": True, "redis_url": None}
    b = create_app({**config, "head_poll_seconds": 0.3})
    try:
        sdk_b = Caller(b.test_client(), secrets["sdk:production"])
        etag = _fetch(sdk_b).headers["ETag"]
        assert engineer.post(KILL).status_code == 200
        _until_200(sdk_b, etag, within=0.3 + 0.5)
    finally:
        _close(b)


def _instance(database_url: str, redis_url: str, poll: float) -> Any:
    config = {"database_url": database_url, "testing": True, "redis_url": redis_url}
    return create_app({**config, "head_poll_seconds": poll})


def _close(*apps: Any) -> None:
    for instance in apps:
        _state(instance).close()


def _until_200(caller: Caller, etag: str, within: float) -> float:
    started = time.monotonic()
    while _fetch(caller, etag).status_code == 304:
        assert time.monotonic() - started < within, f"still 304 after {within} s"
        time.sleep(0.01)
    return time.monotonic() - started


def test_snapshot__change_on_a_with_redis__b_stops_304_within_a_second(
    database_url, redis_url, secrets, engineer
):
    """The head poll is 30 s here: only the broker's message can make it in time."""
    create_flag(engineer, FLAG)
    a, b = _instance(database_url, redis_url, 30), _instance(database_url, redis_url, 30)
    try:
        sdk_b = Caller(b.test_client(), secrets["sdk:production"])
        etag = _fetch(sdk_b).headers["ETag"]
        _wait_subscribed(b)
        Caller(a.test_client(), secrets["admin"]).post(KILL)
        _until_200(sdk_b, etag, within=1.0)
    finally:
        _close(a, b)


def test_snapshot__broker_message_lost__b_converges_within_the_head_poll(
    database_url, redis_url, secrets, engineer
):
    create_flag(engineer, FLAG)
    a, b = _instance(database_url, redis_url, 0.3), _instance(database_url, redis_url, 0.3)
    try:
        sdk_b = Caller(b.test_client(), secrets["sdk:production"])
        etag = _fetch(sdk_b).headers["ETag"]
        _wait_subscribed(b)
        _state(b).broker.heard = None  # every pub/sub message to B's head is dropped
        Caller(a.test_client(), secrets["admin"]).post(KILL)
        _until_200(sdk_b, etag, within=0.3 + 0.5)
    finally:
        _close(a, b)


def _wait_subscribed(instance: Any) -> None:
    connected = _state(instance).broker.connected  # type: ignore[attr-defined]
    assert connected.wait(5), "the Redis listener never subscribed"


# --- gzip -------------------------------------------------------------------------------


def test_snapshot_gzip__accepted__compressed_same_bytes_per_version_and_vary(sdk, engineer):
    create_flag(engineer, FLAG)
    plain = _fetch(sdk)
    first, second = _fetch(sdk, encoding="gzip, br"), _fetch(sdk, encoding="gzip")
    assert first.headers["Content-Encoding"] == "gzip"
    assert first.headers["Vary"] == plain.headers["Vary"]
    assert "Accept-Encoding" in first.headers["Vary"].split(", ")
    assert first.get_data() == second.get_data()
    assert gzip.decompress(first.get_data()) == plain.get_data()
    assert first.headers["ETag"] == plain.headers["ETag"]
    assert len(first.get_data()) < len(plain.get_data())


def test_snapshot_gzip__compressed_once_per_version(app, sdk, engineer):
    create_flag(engineer, FLAG)
    entry = _state(app).snapshots.get(_state(app).db.read, "production")
    _fetch(sdk, encoding="gzip")
    cached = _state(app).snapshots.get(_state(app).db.read, "production").compressed["gzip"]
    assert _fetch(sdk, encoding="gzip").get_data() == cached
    assert entry.version == json.loads(gzip.decompress(cached))["version"]
    engineer.post(KILL)
    moved = json.loads(gzip.decompress(_fetch(sdk, encoding="gzip").get_data()))
    assert moved["version"] > entry.version and moved["flags"][FLAG]["killed"] is True


def test_snapshot_gzip__change_elsewhere__compressed_body_kept(app, sdk, engineer):
    create_flag(engineer, FLAG)
    before = _fetch(sdk, encoding="gzip").get_data()
    cached = _state(app).snapshots.get(_state(app).db.read, "production").compressed["gzip"]
    engineer.post(f"/api/v1/flags/{FLAG}/environments/staging/kill")
    entry = _state(app).snapshots.get(_state(app).db.read, "production")
    assert entry.compressed["gzip"] is cached and _fetch(sdk, encoding="gzip").get_data() == before


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        (None, False),
        ("", False),
        ("identity", False),
        ("gzip", True),
        ("GZIP", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0, identity", False),
        ("*", True),
        ("br;q=1.0, *;q=0", False),
        ("gzip;q=bad", False),
    ],
)
def test_accepts_gzip(header, accepted):
    assert accepts_gzip(header) is accepted


def test_snapshot_gzip__refused__identity(sdk, engineer):
    create_flag(engineer, FLAG)
    response = _fetch(sdk, encoding="gzip;q=0, identity")
    assert "Content-Encoding" not in response.headers
    assert json.loads(response.get_data())["flags"][FLAG]["key"] == FLAG


# --- the fast path in front of Flask ----------------------------------------------------


def _fast(app: Any) -> Any:
    fast = app.wsgi_app
    while not hasattr(fast, "answered"):
        fast = fast.app  # under ProxyFix and the like
    return fast


def _same_answer(flask_answer: Any, fast_answer: Any) -> None:
    def shown(response: Any) -> dict[str, str]:
        return {k: v for k, v in response.headers.items() if k != "X-Request-ID"}

    assert fast_answer.status_code == flask_answer.status_code
    assert shown(fast_answer) == shown(flask_answer)
    assert fast_answer.get_data() == flask_answer.get_data()
    assert fast_answer.headers["X-Request-ID"]


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_fast_path__cached_key_and_snapshot__same_answers_as_flask(
    app, database_url, sdk, engineer, secrets, encoding
):
    create_flag(engineer, FLAG)
    fresh = create_app({"database_url": database_url, "testing": True, "redis_url": None})
    try:
        fast = _fast(app)
        by_flask = _fetch(sdk, encoding=encoding)  # the key's first request: Flask
        assert fast.answered == 0
        _same_answer(by_flask, _fetch(sdk, encoding=encoding))
        etag = by_flask.headers["ETag"]
        flask_304 = _fetch(Caller(fresh.test_client(), secrets["sdk:production"]), etag)
        assert _fast(fresh).answered == 0
        _same_answer(flask_304, _fetch(sdk, etag, encoding))
        assert fast.answered == 2
    finally:
        _close(fresh)


def test_fast_path__request_id_kept_when_sane(sdk, engineer):
    create_flag(engineer, FLAG)
    _fetch(sdk)
    kept = sdk.get("/sdk/v1/snapshot", headers={"X-Request-ID": "poll-1"})
    made = sdk.get("/sdk/v1/snapshot", headers={"X-Request-ID": "bad id!"})
    assert kept.headers["X-Request-ID"] == "poll-1"
    assert made.headers["X-Request-ID"] not in ("bad id!", "")


def test_fast_path__change__falls_back_to_flask_then_answers_again(app, sdk, engineer):
    create_flag(engineer, FLAG)
    etag = _fetch(sdk).headers["ETag"]
    fast = _fast(app)
    assert _fetch(sdk, etag).status_code == 304 and fast.answered == 1
    engineer.post(KILL)  # the cached snapshot no longer covers the head: Flask rebuilds
    changed = _fetch(sdk, etag)
    assert changed.status_code == 200 and fast.answered == 1
    assert _fetch(sdk, changed.headers["ETag"]).status_code == 304 and fast.answered == 2


def test_fast_path__revoked_key__401_at_once(app, admin, engineer, secrets):
    create_flag(engineer, FLAG)
    key_id = admin.get("/api/v1/environments/production/sdk-keys").json[0]["id"]
    sdk = Caller(app.test_client(), secrets["sdk:production"])
    etag = _fetch(sdk).headers["ETag"]
    assert _fetch(sdk, etag).status_code == 304
    deleted = admin.delete(f"/api/v1/environments/production/sdk-keys/{key_id}")
    assert deleted.status_code == 200
    assert _fetch(sdk, etag).status_code == 401


def test_fast_path__other_paths_and_methods__untouched(app, sdk, engineer):
    create_flag(engineer, FLAG)
    _fetch(sdk)
    fast = _fast(app)
    assert sdk.post("/sdk/v1/snapshot").status_code == 405
    assert sdk.get("/sdk/v1/snapshot/").status_code == 404
    assert fast.answered == 0


# --- evaluate's answer, written without marshmallow -------------------------------------


def test_evaluation_json__same_as_the_documented_schema():
    from flagsvc_sdk.engine import ErrorCode
    from flagsvc_sdk.engine import Reason
    from flagsvc_sdk.engine import Result
    from flagsvc_sdk.engine import Stage

    from flagsvc.api.sdk import EvaluateResultSchema
    from flagsvc.api.sdk import evaluation_json

    results = {
        "typed": Result(
            {"a": [1, 2.5, None]},
            True,
            Reason.TARGETING_MATCH,
            Stage.EARLY_ACCESS,
            "beta",
            None,
            "blue",
            7,
            "feature",
        ),
        "missing": Result(None, False, Reason.ERROR, None, None, ErrorCode.FLAG_NOT_FOUND),
        "plain": Result(False, False, Reason.DISABLED, Stage.OFF, variation="off"),
    }
    written = json.loads(evaluation_json("production", 12, results))
    documented = EvaluateResultSchema().dump(
        {"environment": "production", "version": 12, "results": results}
    )
    assert written == json.loads(json.dumps(documented))


def test_evaluate__answer__json_with_every_field(sdk, engineer):
    create_flag(engineer, FLAG)
    response = sdk.post("/sdk/v1/evaluate", json={"context": {"key": "u-1"}})
    assert response.status_code == 200 and response.mimetype == "application/json"
    result = response.json["results"][FLAG]
    assert set(result) == {
        "variation",
        "value",
        "enabled",
        "reason",
        "error_code",
        "stage",
        "matched_cohort",
        "key_result",
        "flow_item",
    }
    assert response.json["environment"] == "production"


def test_snapshot_cache__claimant_died__builds_itself_after_a_quarter_second(
    database_url, redis_url, secrets, engineer
):
    """Another instance claimed this version's build and never delivered (it died):
    we wait 0.25 s for it, not the claim's 10 s, then build ourselves."""
    import redis as redis_lib

    from flagsvc.delivery.store import RedisSnapshotStore

    create_flag(engineer, FLAG)
    b = _instance(database_url, redis_url, 30)
    try:
        sdk_b = Caller(b.test_client(), secrets["sdk:production"])
        etag = _fetch(sdk_b).headers["ETag"]
        head = _state(b).snapshots.heads.current() + 1  # the version the kill will commit
        claim = f"{RedisSnapshotStore.key('production')}:building:{head}"
        client = redis_lib.Redis.from_url(redis_url)
        client.set(claim, "1", px=10_000)  # claimed by an instance that then died
        client.close()
        builds = _state(b).snapshots.builds
        engineer.post(KILL)
        _state(b).snapshots.heads.heard(head)  # what B's own broker would tell it
        started = time.monotonic()
        assert _fetch(sdk_b, etag).status_code == 200
        assert time.monotonic() - started < 2.0  # not the 10 s claim, nor the old 5 s wait
        assert _state(b).snapshots.builds == builds + 1
    finally:
        _close(b)


def test_fast_path__spec_1_readers_left_to_flask_spec_2_answered(app, sdk, engineer):
    create_flag(engineer, FLAG)
    _fetch(sdk)  # the key's first request: Flask
    fast = _fast(app)
    old = sdk.get("/sdk/v1/snapshot", headers={"User-Agent": "flagsvc-python-sdk/1.0.0"})
    asked = sdk.get("/sdk/v1/snapshot", headers={"Flagsvc-Spec": "1"})
    assert old.json["spec_version"] == asked.json["spec_version"] == 1
    assert fast.answered == 0
    assert sdk.get("/sdk/v1/snapshot", headers={"Flagsvc-Spec": "3"}).status_code == 406
    current = sdk.get("/sdk/v1/snapshot", headers={"Flagsvc-Spec": "2"})
    assert current.json["spec_version"] == 2 and fast.answered == 1
