"""A flag's state per environment through HTTP: stages, ramp, gate, cohorts, exclusions,
kill switch and launch scheduling."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import create_flag

FLAG = "/api/v1/flags/checkout"
PRODUCTION = f"{FLAG}/environments/production"
STAGING = f"{FLAG}/environments/staging"
DEFAULT_ITEMS = ["docs", "announcement", "support_enablement", "sales_briefing"]
STATE_ACTIONS = (
    "stage_changed cohorts_set exclusions_set killed resumed launch_scheduled launch_cancelled"
)


@pytest.fixture
def flag(engineer) -> dict[str, Any]:
    return create_flag(engineer, "checkout", name="Checkout")


def _cohort(caller, key: str) -> None:
    body = {"key": key, "name": key.title(), "rules": [], "opt_in": False}
    assert caller.post("/api/v1/cohorts", json=body).status_code == 201


def _move(caller, path: str, stage: str, percent: float | None = None, **kwargs: Any) -> Any:
    ramp = {} if percent is None else {"rollout_percent": percent}
    return caller.post(f"{path}/stage", json={"stage": stage, **ramp}, **kwargs)


def _moved(caller, path: str, stage: str, percent: float | None = None) -> dict[str, Any]:
    response = _move(caller, path, stage, percent)
    assert response.status_code == 200, response.json
    return response.json


def _ready(marketing) -> None:
    for item in DEFAULT_ITEMS:
        assert marketing.put(f"{FLAG}/readiness/{item}", json={"done": True}).status_code == 200


def _put(caller, path: str, body: dict[str, Any]) -> Any:
    etag = caller.get(path.rsplit("/", 1)[0]).headers["ETag"]
    return caller.put(path, json=body, headers={"If-Match": etag})


def _events(viewer, action: str) -> list[dict[str, Any]]:
    return viewer.get(f"/api/v1/audit?flag=checkout&action={action}&limit=500").json["items"]


# --- reading ------------------------------------------------------------------------


def test_state__new_flag__dark_with_readiness_missing(flag, viewer):
    response = viewer.get(PRODUCTION)
    assert response.status_code == 200 and response.headers["ETag"]
    body = response.json
    assert body["flag"] == "checkout" and body["environment"] == "production"
    assert body["gated"] is True and body["stage"] == "off" and body["rollout_percent"] == 0
    assert body["killed"] is False and body["cohorts"] == [] and body["exclusions"] == []
    assert body["launch_at"] is None and body["version"] == 1
    assert body["readiness"] == {"ready": False, "missing": DEFAULT_ITEMS}


@pytest.mark.parametrize(
    ("path", "name"),
    [(f"{FLAG}/environments/moon", "moon"), ("/api/v1/flags/gone/environments/staging", "gone")],
)
def test_state__unknown_flag_or_environment__404_names_it(flag, viewer, engineer, path, name):
    for response in (viewer.get(path), engineer.post(f"{path}/kill")):
        assert response.status_code == 404 and name in response.json["message"]


def test_state__readiness_changes__etag_changes(flag, viewer, marketing):
    etag = viewer.get(PRODUCTION).headers["ETag"]
    assert viewer.get(PRODUCTION, headers={"If-None-Match": etag}).status_code == 304
    marketing.put(f"{FLAG}/readiness/docs", json={"done": True})
    assert viewer.get(PRODUCTION, headers={"If-None-Match": etag}).status_code == 200


# --- stage moves and the readiness gate ---------------------------------------------------


def test_stage__off_to_early_access__moved_and_audited_forward(flag, engineer, viewer):
    body = _moved(engineer, PRODUCTION, "early_access")
    assert body["stage"] == "early_access" and body["version"] == 2
    [event] = _events(viewer, "flag.stage_changed")
    assert event["flag_key"] == "checkout" and event["environment"] == "production"
    assert event["before"] == {"stage": "off", "rollout_percent": 0}
    assert event["after"] == {"stage": "early_access", "rollout_percent": 0, "direction": "forward"}


def test_stage__general_in_production_before_ready__409_lists_all_missing(flag, engineer):
    _moved(engineer, PRODUCTION, "early_access")
    response = _move(engineer, PRODUCTION, "general", 10)
    assert response.status_code == 409
    assert response.json["missing_readiness"] == DEFAULT_ITEMS
    assert engineer.get(PRODUCTION).json["stage"] == "early_access"


def test_stage__general_in_staging__not_gated_so_allowed(flag, engineer):
    _moved(engineer, STAGING, "early_access")
    assert _moved(engineer, STAGING, "general", 25)["rollout_percent"] == 25


def test_stage__general_in_production_once_ready__allowed(flag, engineer, marketing):
    _moved(engineer, PRODUCTION, "early_access")
    _ready(marketing)
    body = _moved(engineer, PRODUCTION, "general")
    assert body["stage"] == "general" and body["rollout_percent"] == 0


def test_stage__ramp_10_50_100_once_ready__each_step_audited(flag, engineer, marketing, viewer):
    _moved(engineer, PRODUCTION, "early_access")
    _ready(marketing)
    for percent in (10, 50, 12.5, 100):
        assert _moved(engineer, PRODUCTION, "general", percent)["rollout_percent"] == percent
    assert _moved(engineer, PRODUCTION, "released")["rollout_percent"] == 0
    events = _events(viewer, "flag.stage_changed")
    ramps = [(e["after"]["stage"], e["after"]["rollout_percent"]) for e in events]
    general = [("general", percent) for percent in (10, 50, 12.5, 100)]
    assert ramps == [("early_access", 0), *general, ("released", 0)]


def test_stage__in_general__unmarking_refused_ramp_down_and_rollback_allowed(
    flag, engineer, marketing, viewer
):
    # readiness cannot be lost while general rollout lasts in a gated environment
    # (tests/api/test_gate.py), so a ramp-up there never meets incomplete readiness
    _moved(engineer, PRODUCTION, "early_access")
    _ready(marketing)
    _moved(engineer, PRODUCTION, "general", 50)
    assert marketing.put(f"{FLAG}/readiness/docs", json={"done": False}).status_code == 409
    assert _moved(engineer, PRODUCTION, "general", 20)["rollout_percent"] == 20
    assert _moved(engineer, PRODUCTION, "early_access")["stage"] == "early_access"
    directions = [e["after"]["direction"] for e in _events(viewer, "flag.stage_changed")]
    assert directions == ["forward", "forward", "rollback", "rollback"]


def test_stage__released_back_to_general__a_rollback(flag, engineer, marketing, viewer):
    _moved(engineer, PRODUCTION, "early_access")
    _ready(marketing)
    _moved(engineer, PRODUCTION, "released")
    assert _moved(engineer, PRODUCTION, "general", 100)["stage"] == "general"
    assert _events(viewer, "flag.stage_changed")[-1]["after"]["direction"] == "rollback"


def test_stage__retire_from_anywhere__allowed_even_before_ready(flag, engineer):
    _moved(engineer, PRODUCTION, "early_access")
    assert _moved(engineer, PRODUCTION, "retired")["stage"] == "retired"


@pytest.mark.parametrize(("stage", "percent"), [("released", None), ("general", 100)])
def test_stage__retired_then_general_exposure_before_ready__409_and_stays_retired(
    flag, engineer, stage, percent
):
    _moved(engineer, PRODUCTION, "retired")
    response = _move(engineer, PRODUCTION, stage, percent)
    assert response.status_code == 409
    assert response.json["missing_readiness"] == DEFAULT_ITEMS
    assert engineer.get(PRODUCTION).json["stage"] == "retired"


@pytest.mark.parametrize("stage", ["off", "early_access", "released", "retired"])
def test_stage__percent_with_stage_other_than_general__422(flag, engineer, stage):
    response = _move(engineer, STAGING, stage, 10)
    assert response.status_code == 422
    assert "rollout_percent" in response.json["errors"]["json"]


@pytest.mark.parametrize("percent", [-1, 100.01, 12.345, "many", None])
def test_stage__bad_percent__422(flag, engineer, percent):
    body = {"stage": "general", "rollout_percent": percent}
    response = engineer.post(f"{STAGING}/stage", json=body)
    assert response.status_code == 422
    assert "rollout_percent" in response.json["errors"]["json"]


@pytest.mark.parametrize("body", [{}, {"stage": "launched"}, {"stage": "off", "extra": 1}])
def test_stage__bad_body__422(flag, engineer, body):
    assert engineer.post(f"{STAGING}/stage", json=body).status_code == 422


def test_stage__same_stage_or_ramp__409_and_no_event(flag, engineer, viewer):
    assert _move(engineer, STAGING, "off").status_code == 409
    _moved(engineer, STAGING, "general", 30)
    assert _move(engineer, STAGING, "general", 30).status_code == 409
    assert _move(engineer, STAGING, "general").status_code == 409
    assert len(_events(viewer, "flag.stage_changed")) == 1


def test_stage__if_match__optional_but_checked_when_sent(flag, engineer):
    etag = engineer.get(STAGING).headers["ETag"]
    moved = _move(engineer, STAGING, "early_access", headers={"If-Match": etag})
    assert moved.status_code == 200 and moved.headers["ETag"] != etag
    assert _move(engineer, STAGING, "off", headers={"If-Match": etag}).status_code == 412


# --- kill switch -------------------------------------------------------------------------


def test_kill__twice__idempotent_one_event_then_resume(flag, engineer, viewer):
    _moved(engineer, STAGING, "early_access")
    first = engineer.post(f"{STAGING}/kill")
    second = engineer.post(f"{STAGING}/kill")
    assert first.status_code == second.status_code == 200
    assert second.json["killed"] is True and second.json["version"] == first.json["version"]
    assert second.json["stage"] == "early_access"
    for _ in range(2):
        assert engineer.post(f"{STAGING}/resume").json["killed"] is False
    [killed] = _events(viewer, "flag.killed")
    assert killed["before"]["killed"] is False and killed["after"]["killed"] is True
    assert len(_events(viewer, "flag.resumed")) == 1


def test_kill__only_that_environment(flag, engineer, viewer):
    engineer.post(f"{PRODUCTION}/kill")
    environments = viewer.get("/api/v1/flags/checkout").json["environments"]
    assert environments["production"]["killed"] is True
    assert environments["staging"]["killed"] is False


# --- cohorts and exclusions -------------------------------------------------------------------


def test_cohorts__set_in_order__shown_and_audited(flag, engineer, viewer):
    for key in ("vip", "beta-testers"):
        _cohort(engineer, key)
    response = _put(engineer, f"{STAGING}/cohorts", {"cohorts": ["beta-testers", "vip"]})
    assert response.status_code == 200, response.json
    assert viewer.get(STAGING).json["cohorts"] == ["beta-testers", "vip"]
    _put(engineer, f"{STAGING}/cohorts", {"cohorts": ["vip"]})
    events = _events(viewer, "flag.cohorts_set")
    assert [e["after"]["cohorts"] for e in events] == [["beta-testers", "vip"], ["vip"]]
    assert events[1]["before"]["cohorts"] == ["beta-testers", "vip"]


def test_cohorts__unknown_keys__422_names_cohorts_and_keys(flag, engineer):
    _cohort(engineer, "vip")
    response = _put(engineer, f"{STAGING}/cohorts", {"cohorts": ["vip", "ghosts", "nobody"]})
    assert response.status_code == 422
    reason = response.json["errors"]["json"]["cohorts"][0]
    assert "ghosts" in reason and "nobody" in reason and "vip" not in reason


@pytest.mark.parametrize(
    "cohorts", [["vip", "vip"], [f"c{n}" for n in range(51)], ["Not A Key"], "vip"]
)
def test_cohorts__bad_list__422(flag, engineer, cohorts):
    response = _put(engineer, f"{STAGING}/cohorts", {"cohorts": cohorts})
    assert response.status_code == 422 and "cohorts" in response.json["errors"]["json"]


def test_cohorts__stale_if_match__412(flag, engineer):
    _cohort(engineer, "vip")
    etag = engineer.get(STAGING).headers["ETag"]
    ok = engineer.put(f"{STAGING}/cohorts", json={"cohorts": ["vip"]}, headers={"If-Match": etag})
    assert ok.status_code == 200
    stale = engineer.put(f"{STAGING}/cohorts", json={"cohorts": []}, headers={"If-Match": etag})
    assert stale.status_code == 412


@pytest.mark.parametrize(
    ("path", "body"), [("cohorts", {"cohorts": []}), ("exclusions", {"users": []})]
)
def test_lists__without_if_match__428(flag, engineer, path, body):
    assert engineer.put(f"{STAGING}/{path}", json=body).status_code == 428


def test_exclusions__replaced__counts_and_samples_audited(flag, engineer, viewer):
    first = [f"user-{n:03}" for n in range(30)]
    assert _put(engineer, f"{STAGING}/exclusions", {"users": first}).status_code == 200
    second = [*first[10:], "late-1", "late-1"]
    body = _put(engineer, f"{STAGING}/exclusions", {"users": second}).json
    assert body["exclusions"] == sorted(set(second))
    event = _events(viewer, "flag.exclusions_set")[1]
    assert event["before"] == {"count": 30}
    assert event["after"]["count"] == 21 and event["after"]["added"] == ["late-1"]
    assert event["after"]["removed"] == first[:10] and event["after"]["removed_count"] == 10
    assert len(_events(viewer, "flag.exclusions_set")[0]["after"]["added"]) == 20


def test_exclusions__ten_thousand__accepted(flag, engineer):
    users = [f"user-{n}" for n in range(10_000)]
    response = _put(engineer, f"{STAGING}/exclusions", {"users": users})
    assert response.status_code == 200 and len(response.json["exclusions"]) == 10_000


@pytest.mark.parametrize(
    "users", [[""], ["x" * 257], ["nul\x00"], [7], [f"u{n}" for n in range(10_001)], None]
)
def test_exclusions__bad_keys__422_names_users(flag, engineer, users):
    response = _put(engineer, f"{STAGING}/exclusions", {"users": users})
    assert response.status_code == 422 and "users" in response.json["errors"]["json"]


# --- launch scheduling ----------------------------------------------------------------


def _launch(marketing, clock, days: float = 7) -> Any:
    at = (clock() + timedelta(days=days)).isoformat()
    return marketing.put(f"{PRODUCTION}/launch", json={"launch_at": at})


def test_launch__not_ready__409_names_missing_items(flag, engineer, marketing, clock):
    _moved(engineer, PRODUCTION, "early_access")
    marketing.put(f"{FLAG}/readiness/docs", json={"done": True})
    response = _launch(marketing, clock)
    assert response.status_code == 409
    assert "announcement" in response.json["message"] and "docs" not in response.json["message"]


def test_launch__ready_but_not_in_early_access__409_names_stage(flag, marketing, clock):
    _ready(marketing)
    response = _launch(marketing, clock)
    assert response.status_code == 409 and "off" in response.json["message"]


@pytest.mark.parametrize("launch_at", ["2026-09-30T09:00:00+00:00", "2030-01-01T00:00:00", "soon"])
def test_launch__past_or_without_offset__422(flag, engineer, marketing, launch_at):
    _moved(engineer, PRODUCTION, "early_access")
    _ready(marketing)
    response = marketing.put(f"{PRODUCTION}/launch", json={"launch_at": launch_at})
    assert response.status_code == 422 and "launch_at" in response.json["errors"]["json"]


def test_launch__ready_in_early_access__scheduled_then_cancelled(
    flag, engineer, marketing, viewer, clock
):
    _moved(engineer, PRODUCTION, "early_access")
    _ready(marketing)
    at = (clock() + timedelta(days=7)).isoformat()
    scheduled = marketing.put(f"{PRODUCTION}/launch", json={"launch_at": at})
    assert scheduled.status_code == 200 and scheduled.json["launch_at"] == at
    assert _events(viewer, "flag.launch_scheduled")[0]["after"] == {
        "launch_at": at,
        "rollout_percent": 100.0,
    }
    cancelled = marketing.delete(f"{PRODUCTION}/launch")
    assert cancelled.status_code == 200 and cancelled.json["launch_at"] is None
    assert marketing.delete(f"{PRODUCTION}/launch").status_code == 409
    assert len(_events(viewer, "flag.launch_cancelled")) == 1


def test_launch__stage_leaves_early_access__launch_dropped(flag, engineer, marketing, clock):
    _moved(engineer, PRODUCTION, "early_access")
    _ready(marketing)
    assert _launch(marketing, clock).status_code == 200
    assert _moved(engineer, PRODUCTION, "general", 5)["launch_at"] is None


# --- roles and the audit --------------------------------------------------------------


def test_state__marketing_cannot_move_kill_or_set_lists(flag, marketing):
    assert _move(marketing, PRODUCTION, "early_access").status_code == 403
    for command in ("kill", "resume"):
        assert marketing.post(f"{PRODUCTION}/{command}").status_code == 403
    for path, body in (("cohorts", {"cohorts": []}), ("exclusions", {"users": []})):
        response = marketing.put(f"{PRODUCTION}/{path}", json=body, headers={"If-Match": "*"})
        assert response.status_code == 403
    assert marketing.get(PRODUCTION).status_code == 200


def test_state__engineer_cannot_schedule_launch(flag, engineer, clock):
    assert _launch(engineer, clock).status_code == 403
    assert engineer.delete(f"{PRODUCTION}/launch").status_code == 403


def test_state__viewer_sdk_anonymous__read_only_or_refused(flag, viewer, sdk, anonymous):
    assert viewer.get(PRODUCTION).status_code == 200
    assert _move(viewer, PRODUCTION, "early_access").status_code == 403
    assert viewer.post(f"{PRODUCTION}/kill").status_code == 403
    assert sdk.get(PRODUCTION).status_code == 403
    assert sdk.post(f"{PRODUCTION}/kill").status_code == 403
    assert anonymous.post(f"{PRODUCTION}/kill").status_code == 401


def test_state__every_change__exactly_one_event_with_flag_key_and_chain_valid(
    flag, engineer, marketing, viewer, clock
):
    _cohort(engineer, "vip")
    _moved(engineer, PRODUCTION, "early_access")
    _put(engineer, f"{PRODUCTION}/cohorts", {"cohorts": ["vip"]})
    _put(engineer, f"{PRODUCTION}/exclusions", {"users": ["u-1"]})
    engineer.post(f"{PRODUCTION}/kill")
    engineer.post(f"{PRODUCTION}/resume")
    _ready(marketing)
    _launch(marketing, clock)
    marketing.delete(f"{PRODUCTION}/launch")
    events = viewer.get("/api/v1/audit?flag=checkout&limit=500").json["items"]
    state_events = [e for e in events if e["environment"] == "production"]
    assert [e["action"] for e in state_events] == [f"flag.{a}" for a in STATE_ACTIONS.split()]
    assert all(e["flag_key"] == "checkout" for e in events)
    assert viewer.get(PRODUCTION).json["version"] == 1 + len(state_events)
    assert viewer.get("/api/v1/audit/verify").json["valid"] is True


def test_launches__listed_soonest_first_until_cancelled(flag, engineer, marketing, viewer, clock):
    _moved(engineer, PRODUCTION, "early_access")
    _ready(marketing)
    at = (clock() + timedelta(days=3)).isoformat()
    assert (
        marketing.put(
            f"{PRODUCTION}/launch", json={"launch_at": at, "rollout_percent": 25}
        ).status_code
        == 200
    )
    listed = viewer.get("/api/v1/launches").json["items"]
    assert listed == [{"flag": "checkout", "name": "Checkout", "environment": "production",
                       "stage": "early_access", "launch_at": at, "rollout_percent": 25.0}]  # fmt: skip
    assert viewer.get("/api/v1/launches?environment=staging").json["items"] == []
    assert viewer.get("/api/v1/launches?environment=Bad Key").status_code == 422
    marketing.delete(f"{PRODUCTION}/launch")
    assert viewer.get("/api/v1/launches").json["items"] == []
