"""SDK endpoints in-process, on SQLite and PostgreSQL: snapshot, evaluate, enroll /
leave, metrics, and the snapshot cache behind them (built once per change, shared
through Redis between instances). Streams against a real server: test_stream.py.
"""

from __future__ import annotations

import threading
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import select

from flagsvc import create_app
from flagsvc.services import sdk_metrics
from flagsvc.state import AppState
from flagsvc.storage.models import AuditEvent
from tests.conftest import Caller
from tests.conftest import create_flag
from tests.live import free_port

FLAG = "new-checkout"
STATE = f"/api/v1/flags/{FLAG}/environments"


def _state(app) -> AppState:
    return app.extensions["flagsvc"]


def _create_flag(engineer, key: str = FLAG) -> None:
    create_flag(engineer, key, name="New checkout")


def _cohort(
    engineer, key: str, *, opt_in: bool, used_in: tuple[str, ...] = ("production",)
) -> None:
    """A cohort; a flag uses it in ``used_in`` (where SDK keys may enrol users in it)."""
    body = {"key": key, "name": key, "opt_in": opt_in}
    assert engineer.post("/api/v1/cohorts", json=body).status_code == 201
    if used_in and engineer.get(f"/api/v1/flags/{FLAG}").status_code == 404:
        _create_flag(engineer)
    for env in used_in:
        path = f"{STATE}/{env}"
        used = [*engineer.get(path).json["cohorts"], key]
        etag = {"If-Match": engineer.get(path).headers["ETag"]}
        assert (
            engineer.put(f"{path}/cohorts", json={"cohorts": used}, headers=etag).status_code == 200
        )


def _snapshot(caller, etag: str | None = None):
    headers = {"If-None-Match": etag} if etag else None
    return caller.get("/sdk/v1/snapshot", headers=headers)


# --- snapshot -------------------------------------------------------------------------


def test_snapshot__first_fetch__200_with_etag_and_environment(sdk, engineer):
    _create_flag(engineer)
    response = _snapshot(sdk)
    assert response.status_code == 200
    body = response.json
    assert body["environment"] == "production"
    assert response.headers["ETag"] == f'"production.{body["version"]}"'
    assert response.headers["Cache-Control"] == "no-cache"
    assert body["flags"][FLAG]["stage"] == "off"


def test_snapshot__if_none_match_current__304_no_body(sdk, engineer):
    _create_flag(engineer)
    etag = _snapshot(sdk).headers["ETag"]
    response = _snapshot(sdk, etag)
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag


def test_snapshot__change_in_environment__version_moves_and_old_etag_gets_200(sdk, engineer):
    _create_flag(engineer)
    before = _snapshot(sdk)
    assert engineer.post(f"{STATE}/production/kill").status_code == 200
    after = _snapshot(sdk, before.headers["ETag"])
    assert after.status_code == 200
    assert after.json["version"] > before.json["version"]
    assert after.json["flags"][FLAG]["killed"] is True


def test_snapshot__change_in_other_environment__same_version_and_304(sdk, engineer):
    _create_flag(engineer)
    etag = _snapshot(sdk).headers["ETag"]
    assert engineer.post(f"{STATE}/staging/kill").status_code == 200
    assert _snapshot(sdk, etag).status_code == 304


def test_snapshot__retired_flag__absent(sdk, engineer):
    _create_flag(engineer)
    _create_flag(engineer, "kept")
    response = engineer.post(f"{STATE}/production/stage", json={"stage": "retired"})
    assert response.status_code == 200, response.json
    flags = _snapshot(sdk).json["flags"]
    assert FLAG not in flags and "kept" in flags


def test_snapshot__many_requests_one_change__built_once_per_change(app, sdk, engineer):
    _create_flag(engineer)
    cache = _state(app).snapshots
    for _ in range(20):
        assert _snapshot(sdk).status_code == 200
        sdk.post("/sdk/v1/evaluate", json={"context": {"key": "u"}})
    assert cache.builds == 1
    engineer.post(f"{STATE}/production/kill")
    for _ in range(5):
        _snapshot(sdk)
    assert cache.builds == 2


def test_snapshot__staging_key__sees_only_staging(client, secrets, engineer):
    _create_flag(engineer)
    engineer.post(f"{STATE}/staging/kill")
    staging = Caller(client, secrets["sdk:staging"])
    body = _snapshot(staging).json
    assert body["environment"] == "staging"
    assert body["flags"][FLAG]["killed"] is True
    evaluated = staging.post("/sdk/v1/evaluate", json={"context": {"key": "u"}}).json
    assert evaluated["environment"] == "staging"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/sdk/v1/snapshot", None),
        ("GET", "/sdk/v1/stream", None),
        ("POST", "/sdk/v1/evaluate", {"context": {"key": "u"}}),
        ("POST", "/sdk/v1/enroll", {"cohort": "c", "context": {"key": "u"}}),
        ("POST", "/sdk/v1/leave", {"cohort": "c", "context": {"key": "u"}}),
        ("POST", "/sdk/v1/metrics", {"evaluations": []}),
    ],
)
def test_sdk_endpoints__admin_token__403_and_anonymous_401(admin, anonymous, method, path, body):
    assert admin.request(method, path, json=body).status_code == 403
    assert anonymous.request(method, path, json=body).status_code == 401


# --- evaluate -------------------------------------------------------------------------


def test_evaluate__flag_in_early_access__cohort_member_on_others_off(sdk, engineer):
    _create_flag(engineer)
    _cohort(engineer, "beta", opt_in=True)
    etag = engineer.get(f"{STATE}/production").headers["ETag"]
    engineer.put(
        f"{STATE}/production/cohorts", json={"cohorts": ["beta"]}, headers={"If-Match": etag}
    )
    engineer.post(f"{STATE}/production/stage", json={"stage": "early_access"})
    engineer.post("/api/v1/cohorts/beta/members", json={"add": ["vip"]})
    body = sdk.post("/sdk/v1/evaluate", json={"context": {"key": "vip"}}).json
    assert body["environment"] == "production"
    assert body["version"] == _snapshot(sdk).json["version"]
    assert body["results"][FLAG]["enabled"] is True
    assert body["results"][FLAG]["matched_cohort"] == "beta"
    other = sdk.post("/sdk/v1/evaluate", json={"context": {"key": "x"}, "flags": [FLAG]}).json
    assert other["results"][FLAG]["enabled"] is False


def test_evaluate__integer_user_key__answers_as_its_decimal_string(sdk, engineer):
    # Given a 50 % rollout, so that the bucket decides
    _create_flag(engineer)
    engineer.post(f"{STATE}/production/stage", json={"stage": "general", "rollout_percent": 50})
    for user_id in range(40):
        # When
        as_int = sdk.post("/sdk/v1/evaluate", json={"context": {"key": user_id}}).json
        as_text = sdk.post("/sdk/v1/evaluate", json={"context": {"key": str(user_id)}}).json
        # Then
        assert as_int["results"] == as_text["results"]
        assert as_int["results"][FLAG]["error_code"] is None


@pytest.mark.parametrize("key", [True, 4.5, "", "x" * 257, 10**257, [1]])
def test_evaluate__not_a_user_key__422_names_context(sdk, key):
    response = sdk.post("/sdk/v1/evaluate", json={"context": {"key": key}})
    assert response.status_code == 422
    assert "context" in response.json["errors"]["json"]


@pytest.mark.parametrize("context", [{}, {"key": None, "country": "NL"}])
def test_evaluate__keyless_context__answered_where_no_key_is_needed(
    sdk, engineer, marketing, context
):
    # Given a flag released in production and one ramping at 50 %
    for key, move in ((FLAG, {"stage": "general", "rollout_percent": 50}),
                      ("everywhere", {"stage": "released"})):  # fmt: skip
        create_flag(engineer, key)
        for item in ("docs", "announcement", "support_enablement", "sales_briefing"):
            marketing.put(f"/api/v1/flags/{key}/readiness/{item}", json={"done": True})
        path = f"/api/v1/flags/{key}/environments/production/stage"
        assert engineer.post(path, json=move).status_code == 200
    # When a context without a key is evaluated
    results = sdk.post("/sdk/v1/evaluate", json={"context": context}).json["results"]
    # Then the released flag answers, the ramp cannot decide without a key
    assert (results["everywhere"]["reason"], results["everywhere"]["value"]) == ("STATIC", True)
    assert results[FLAG]["error_code"] == "TARGETING_KEY_MISSING"


def test_evaluate__typed_flag__variation_value_and_metadata(sdk, engineer):
    # Given a string flag whose cohort serves its own variation in production
    objective = engineer.post(
        "/api/v1/objectives", json={"title": "O", "period": "2026-Q4", "owner": "web"}
    ).json
    key_result = engineer.post(
        f"/api/v1/objectives/{objective['id']}/key-results",
        json={"title": "K", "metric": "m", "baseline": 0, "target": 1},
    ).json
    variations = [{"key": "v1", "value": "classic"}, {"key": "v2", "value": "v2"},
                  {"key": "v2-beta", "value": "v2-beta"}]  # fmt: skip
    body = {"key": "layout", "name": "Layout", "flow_item": "feature",
            "key_result_id": key_result["id"], "value_type": "string", "variations": variations,
            "on_variation": "v2", "off_variation": "v1"}  # fmt: skip
    assert engineer.post("/api/v1/flags", json=body).status_code == 201
    _cohort(engineer, "partners", opt_in=False)
    engineer.post("/api/v1/cohorts/partners/members", json={"add": ["p-1"]})
    state = "/api/v1/flags/layout/environments/production"
    etag = engineer.get(state).headers["ETag"]
    cohorts = {"cohorts": ["partners"], "variations": {"partners": "v2-beta"}}
    assert (
        engineer.put(f"{state}/cohorts", json=cohorts, headers={"If-Match": etag}).status_code
        == 200
    )
    engineer.post(f"{state}/stage", json={"stage": "early_access"})
    # When the partner and someone else are evaluated
    partner = sdk.post("/sdk/v1/evaluate", json={"context": {"key": "p-1"}}).json["results"]
    other = sdk.post("/sdk/v1/evaluate", json={"context": {"key": "u-1"}}).json["results"]
    # Then the partner gets the cohort's variation, the other the off variation
    assert {k: partner["layout"][k] for k in ("variation", "value", "reason", "matched_cohort")} == {
        "variation": "v2-beta", "value": "v2-beta", "reason": "TARGETING_MATCH",
        "matched_cohort": "partners"}  # fmt: skip
    assert (other["layout"]["variation"], other["layout"]["value"]) == ("v1", "classic")
    assert other["layout"]["reason"] == "DEFAULT" and other["layout"]["enabled"] is False
    assert (partner["layout"]["key_result"], partner["layout"]["flow_item"]) == (
        key_result["id"],
        "feature",
    )


def test_evaluate__lone_surrogate_in_key__422_names_context(sdk):
    body = b'{"context": {"key": "user-\\udcff"}}'
    response = sdk.post("/sdk/v1/evaluate", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "context" in response.json["errors"]["json"]


# --- enroll / leave -------------------------------------------------------------------


def test_enroll__opt_in_cohort__member_changed_then_idempotent_and_audited(app, sdk, engineer):
    _cohort(engineer, "beta", opt_in=True)
    body = {"cohort": "beta", "context": {"key": "user-1", "plan": "pro"}}
    first = sdk.post("/sdk/v1/enroll", json=body)
    assert first.status_code == 200
    assert first.json == {"cohort": "beta", "user_key": "user-1", "member": True, "changed": True}
    assert sdk.post("/sdk/v1/enroll", json=body).json["changed"] is False
    assert engineer.get("/api/v1/cohorts/beta/members").json["items"][0]["user_key"] == "user-1"
    left = sdk.post("/sdk/v1/leave", json=body).json
    assert left == {"cohort": "beta", "user_key": "user-1", "member": False, "changed": True}
    assert sdk.post("/sdk/v1/leave", json=body).json["changed"] is False
    with _state(app).db.read() as session:
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action.like("cohort.member_%"))
            .order_by(AuditEvent.seq)
        ).all()
    assert [e.action for e in events] == ["cohort.member_enrolled", "cohort.member_left"]
    assert all(e.actor.startswith("sdk-key:") and e.actor_role == "sdk" for e in events)


def test_enroll__integer_user_key__enrolled_as_its_decimal_string(sdk, engineer):
    _cohort(engineer, "beta", opt_in=True)
    response = sdk.post("/sdk/v1/enroll", json={"cohort": "beta", "context": {"key": 42}})
    assert response.status_code == 200
    assert response.json["user_key"] == "42"
    assert engineer.get("/api/v1/cohorts/beta/members").json["items"][0]["user_key"] == "42"


def test_enroll__not_opt_in__422_names_cohort(sdk, engineer):
    _cohort(engineer, "staff", opt_in=False)
    response = sdk.post("/sdk/v1/enroll", json={"cohort": "staff", "context": {"key": "u"}})
    assert response.status_code == 422
    assert "cohort" in response.json["errors"]["json"]
    assert (
        sdk.post("/sdk/v1/leave", json={"cohort": "staff", "context": {"key": "u"}}).status_code
        == 422
    )


def _enroll(caller, cohort: str, user: str, path: str = "/sdk/v1/enroll"):
    return caller.post(path, json={"cohort": cohort, "context": {"key": user}})


@pytest.mark.parametrize("path", ["/sdk/v1/enroll", "/sdk/v1/leave"])
def test_enroll__development_key_cohort_only_production_uses__403_nothing_changes(
    sdk, engineer, client, secrets, path
):
    # Given an opt-in cohort only production uses, the flag in early access there
    _cohort(engineer, "beta", opt_in=True)
    assert (
        engineer.post(f"{STATE}/production/stage", json={"stage": "early_access"}).status_code
        == 200
    )
    development = Caller(client, secrets["sdk:development"])
    # When a development SDK key enrols (or removes) a user
    response = _enroll(development, "beta", "intruder", path)
    # Then 403 in the common error shape, and production's answer does not move
    assert response.status_code == 403
    assert response.json["code"] == 403 and "'development'" in response.json["message"]
    assert engineer.get("/api/v1/cohorts/beta").json["member_count"] == 0
    answer = sdk.post("/sdk/v1/evaluate", json={"context": {"key": "intruder"}}).json
    assert answer["results"][FLAG]["enabled"] is False


def test_enroll__cohort_used_in_both_environments__either_key_enrols(
    sdk, engineer, client, secrets
):
    _cohort(engineer, "beta", opt_in=True, used_in=("development", "production"))
    development = Caller(client, secrets["sdk:development"])
    assert _enroll(development, "beta", "u1").status_code == 200
    assert _enroll(sdk, "beta", "u2").status_code == 200
    assert engineer.get("/api/v1/cohorts/beta").json["member_count"] == 2


def test_enroll__cohort_no_flag_uses__403(sdk, engineer):
    _cohort(engineer, "beta", opt_in=True, used_in=())
    assert _enroll(sdk, "beta", "u1").status_code == 403


@pytest.mark.parametrize("app_config", [{"enroll_limit": 3, "enroll_window_seconds": 60}])
def test_enroll__over_the_key_limit__429_retry_after_other_keys_unaffected(
    sdk, engineer, client, secrets, app_config
):
    _cohort(engineer, "beta", opt_in=True, used_in=("staging", "production"))
    codes = [_enroll(sdk, "beta", f"u{n}", path).status_code
             for n, path in enumerate(["/sdk/v1/enroll", "/sdk/v1/leave", "/sdk/v1/enroll"])]  # fmt: skip
    refused = _enroll(sdk, "beta", "u9")
    assert codes == [200, 200, 200] and refused.status_code == 429
    assert refused.json["code"] == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
    assert engineer.get("/api/v1/cohorts/beta").json["member_count"] == 2
    staging = Caller(client, secrets["sdk:staging"])
    assert _enroll(staging, "beta", "u10").status_code == 200


def test_enroll__unknown_cohort__404(sdk):
    response = sdk.post("/sdk/v1/enroll", json={"cohort": "nope", "context": {"key": "u"}})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cohort": "beta", "context": {}}, "context"),
        ({"cohort": "beta", "context": {"key": ""}}, "context"),
        ({"cohort": "Not A Key", "context": {"key": "u"}}, "cohort"),
        ({"context": {"key": "u"}}, "cohort"),
        ({"cohort": "beta", "context": {"key": "u"}, "extra": 1}, "extra"),
    ],
)
def test_enroll__bad_body__422_names_field(sdk, body, field):
    response = sdk.post("/sdk/v1/enroll", json=body)
    assert response.status_code == 422
    assert field in response.json["errors"]["json"]


def test_enroll__cohort_used_in_production__snapshot_version_moves(sdk, engineer):
    _cohort(engineer, "beta", opt_in=True)
    before = _snapshot(sdk)
    sdk.post("/sdk/v1/enroll", json={"cohort": "beta", "context": {"key": "fan"}})
    after = _snapshot(sdk, before.headers["ETag"])
    assert after.status_code == 200
    assert after.json["cohorts"]["beta"]["members"] == ["fan"]


# --- metrics --------------------------------------------------------------------------


def _at(**delta: float) -> str:
    return (datetime(2026, 9, 30, 12, 0, tzinfo=UTC) + timedelta(**delta)).isoformat()


def test_metrics__two_batches__counts_add_and_newest_time_wins(app, sdk, engineer):
    _create_flag(engineer)
    first = {"evaluations": [{"flag": FLAG, "count": 5, "last_evaluated_at": _at(hours=1)}]}
    second = {
        "evaluations": [
            {"flag": FLAG, "count": 2, "last_evaluated_at": _at()},
            {"flag": FLAG, "count": 3, "last_evaluated_at": _at(hours=2)},
            {"flag": "ghost", "count": 9, "last_evaluated_at": _at()},
        ]
    }
    response = sdk.post("/sdk/v1/metrics", json=first)
    assert response.status_code == 202 and response.json == {"accepted": 1, "ignored": 0}
    assert sdk.post("/sdk/v1/metrics", json=second).json == {"accepted": 2, "ignored": 1}
    with _state(app).db.read() as session:
        stats = sdk_metrics.evaluation_stats(session, FLAG)
    assert stats == {
        "production": {"count": 10, "last_evaluated_at": datetime(2026, 9, 30, 14, tzinfo=UTC)}
    }


def test_metrics__time_in_the_future__stored_as_now(app, sdk, engineer, clock):
    _create_flag(engineer)
    future = (clock() + timedelta(days=3)).isoformat()
    sdk.post(
        "/sdk/v1/metrics",
        json={"evaluations": [{"flag": FLAG, "count": 1, "last_evaluated_at": future}]},
    )
    with _state(app).db.read() as session:
        stats = sdk_metrics.evaluation_stats(session, FLAG)
    assert stats["production"]["last_evaluated_at"] == clock()


def test_metrics__no_evaluation__nothing_changes_and_no_audit(app, sdk, engineer):
    _create_flag(engineer)
    etag = _snapshot(sdk).headers["ETag"]
    sdk.post(
        "/sdk/v1/metrics",
        json={"evaluations": [{"flag": FLAG, "count": 1, "last_evaluated_at": _at()}]},
    )
    assert _snapshot(sdk, etag).status_code == 304  # not a change: no new version
    with _state(app).db.read() as session:
        assert sdk_metrics.evaluation_stats(session, "unknown-flag") == {}


@pytest.mark.parametrize(
    "entry",
    [
        {"flag": FLAG, "count": 0, "last_evaluated_at": _at()},
        {"flag": FLAG, "count": -3, "last_evaluated_at": _at()},
        {"flag": FLAG, "count": "3", "last_evaluated_at": _at()},
        {"flag": FLAG, "count": 1.5, "last_evaluated_at": _at()},
        {"flag": FLAG, "count": 1, "last_evaluated_at": "2026-09-30T12:00:00"},  # naive
        {"flag": FLAG, "count": 1, "last_evaluated_at": "yesterday"},
        {"flag": FLAG, "count": 1},
        {"flag": "", "count": 1, "last_evaluated_at": _at()},
        {"flag": FLAG, "count": 1, "last_evaluated_at": _at(), "env": "production"},
    ],
)
def test_metrics__bad_entry__422_names_evaluations(sdk, entry):
    response = sdk.post("/sdk/v1/metrics", json={"evaluations": [entry]})
    assert response.status_code == 422
    assert "evaluations" in response.json["errors"]["json"]


def test_metrics__too_many_entries__422(sdk):
    entry = {"flag": FLAG, "count": 1, "last_evaluated_at": _at()}
    response = sdk.post("/sdk/v1/metrics", json={"evaluations": [entry] * 1001})
    assert response.status_code == 422
    assert "evaluations" in response.json["errors"]["json"]
    assert sdk.post("/sdk/v1/metrics", json={"evaluations": [entry] * 1000}).status_code == 202


def _record_batches(state: AppState, batch, times: int, errors: list) -> None:
    try:
        for _ in range(times):
            with state.db.write() as session:
                sdk_metrics.record_evaluations(
                    session, "production", batch, state.clock(), state.early_adopters
                )
    except BaseException as error:
        errors.append(error)


def test_metrics__concurrent_batches__no_increment_lost(app, engineer):
    _create_flag(engineer)
    _create_flag(engineer, "other")
    state, errors = _state(app), []
    at = datetime(2026, 9, 30, tzinfo=UTC)
    batch = [sdk_metrics.EvaluationCount(key, 1, at) for key in ("other", FLAG, FLAG)]
    threads = [
        threading.Thread(target=_record_batches, args=(state, batch, 10, errors)) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with state.db.read() as session:
        assert sdk_metrics.evaluation_stats(session, FLAG)["production"]["count"] == 120
        assert sdk_metrics.evaluation_stats(session, "other")["production"]["count"] == 60


# --- Redis-shared snapshot cache --------------------------------------------------------


def _instance(database_url: str, redis_url: str | None):
    return create_app({"database_url": database_url, "testing": True, "redis_url": redis_url})


def test_snapshot_cache__two_instances_with_redis__second_serves_first_ones_build(
    database_url, redis_url, secrets, engineer
):
    _create_flag(engineer)
    a, b = _instance(database_url, redis_url), _instance(database_url, redis_url)
    sdk_a = Caller(a.test_client(), secrets["sdk:production"])
    sdk_b = Caller(b.test_client(), secrets["sdk:production"])
    from_a = _snapshot(sdk_a)
    from_b = _snapshot(sdk_b)
    assert from_a.data == from_b.data and from_a.headers["ETag"] == from_b.headers["ETag"]
    assert (_state(a).snapshots.builds, _state(b).snapshots.builds) == (1, 0)
    assert sdk_b.post("/sdk/v1/evaluate", json={"context": {"key": "u"}}).status_code == 200
    for instance in (a, b):
        _state(instance).close()


def test_snapshot_cache__redis_unreachable__serves_from_database(database_url, secrets, engineer):
    _create_flag(engineer)
    app = _instance(database_url, f"redis://127.0.0.1:{free_port()}/0")
    caller = Caller(app.test_client(), secrets["sdk:production"])
    for _ in range(3):
        response = _snapshot(caller)
        assert response.status_code == 200 and FLAG in response.json["flags"]
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 200 and ready.json["status"] == "degraded"
    assert ready.json["checks"] == {"database": "ok", "redis": "down"}
    _state(app).db.dispose()
