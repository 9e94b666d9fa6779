"""Timelines, flow metrics, exports and stale flags through HTTP, on a scripted history.

The figures are hand-computed in ``tests/api/flow_history.py``.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from tests.api import flow_history
from tests.api.flow_history import at_day
from tests.api.flow_history import move

SINCE = flow_history.START_DAY
FLOW = f"/api/v1/flow?since={SINCE.replace('+', '%2B')}"


@pytest.fixture
def history(engineer, marketing, clock):
    return flow_history.build(engineer, marketing, clock)


def _day(clock, day: float) -> str:
    return (clock.start + timedelta(days=day)).isoformat()


# --- timeline -------------------------------------------------------------------------


def test_timeline__scripted_flag__milestones(history, viewer, clock):
    body = viewer.get("/api/v1/flags/flag-a/timeline").json
    assert body["flag"] == "flag-a" and body["created"] == _day(clock, 0)
    assert body["ready"] == {"first": _day(clock, 9), "latest": _day(clock, 9), "now": True}
    production = body["environments"]["production"]
    assert production["first_early_access"] == _day(clock, 2)
    assert production["general_started"] == _day(clock, 10)
    assert production["released"] == _day(clock, 14)
    assert production["retired"] is None
    assert production["ready"] == {"first": _day(clock, 9), "latest": _day(clock, 9)}
    assert body["environments"]["staging"]["first_early_access"] is None


def test_timeline__scripted_flag__stage_periods_per_environment(history, viewer, clock):
    environments = viewer.get("/api/v1/flags/flag-a/timeline").json["environments"]
    assert environments["production"]["stages"] == [
        {"stage": "off", "rollout_percent": 0.0, "from": _day(clock, 0), "to": _day(clock, 2)},
        {
            "stage": "early_access",
            "rollout_percent": 0.0,
            "from": _day(clock, 2),
            "to": _day(clock, 10),
        },
        {
            "stage": "general",
            "rollout_percent": 50.0,
            "from": _day(clock, 10),
            "to": _day(clock, 14),
        },
        {"stage": "released", "rollout_percent": 0.0, "from": _day(clock, 14), "to": None},
    ]
    assert environments["staging"]["stages"] == [
        {"stage": "off", "rollout_percent": 0.0, "from": _day(clock, 0), "to": None}
    ]


def test_timeline__killed_and_resumed__every_flip_listed_with_actor(history, viewer, clock):
    production = viewer.get("/api/v1/flags/flag-b/timeline").json["environments"]["production"]
    assert production["kill_switch"] == [
        {"action": "killed", "at": _day(clock, 5), "actor": "engineer-token"},
        {"action": "resumed", "at": _day(clock, 7), "actor": "engineer-token"},
    ]
    assert [period["stage"] for period in production["stages"]] == [
        "off", "early_access", "general", "released"
    ]  # fmt: skip


def test_timeline__matches_the_audit_it_is_read_from(history, viewer):
    events = viewer.get("/api/v1/audit?flag=flag-e&action=flag.stage_changed").json["items"]
    stages = viewer.get("/api/v1/flags/flag-e/timeline").json["environments"]["production"]
    starts = [(p["stage"], p["rollout_percent"], p["from"]) for p in stages["stages"][1:]]
    expected = [
        (e["after"]["stage"], e["after"]["rollout_percent"], e["occurred_at"]) for e in events
    ]
    assert starts == expected


def test_timeline__unknown_flag__404(viewer):
    assert viewer.get("/api/v1/flags/nope/timeline").status_code == 404


# --- flow metrics ---------------------------------------------------------------------


def test_flow__scripted_history__hand_computed_metrics(history, viewer):
    body = viewer.get(FLOW).json
    assert body["environment"] == "production"
    assert body["flow_time"] == {"count": 2, "mean_days": 12.0, "p50_days": 12.0, "p85_days": 13.4}
    assert body["wait_for_readiness"] == {
        "count": 2, "mean_days": 3.5, "p50_days": 3.5, "p85_days": 5.95
    }  # fmt: skip
    assert body["waiting_for_readiness_now"] == 1  # flag C
    assert body["flow_efficiency"] == 0.625  # (7 + 8) / (14 + 10)
    assert body["stage_median_days"] == {"off": 2.0, "early_access": 6.5, "general": 4.0}
    assert body["bottleneck"] == {"stage": "early_access", "median_days": 6.5}


def test_flow__scripted_history__load_velocity_distribution(history, viewer, clock):
    body = viewer.get(FLOW).json
    assert body["flow_load"]["now"] == 2  # C (early access) and E (general)
    weekly = [(w["week"], w["in_flight"]) for w in body["flow_load"]["weekly"]]
    assert weekly == [("2026-W40", 2), ("2026-W41", 4), ("2026-W42", 2), ("2026-W43", 2)]
    assert body["flow_load"]["weekly"][-1]["at"] == _day(clock, 20)
    velocity = body["flow_velocity"]
    assert velocity["total"] == 2 and velocity["per_week"] == 0.7
    assert [(w["week"], w["released"]) for w in velocity["weekly"]] == [
        ("2026-W40", 0), ("2026-W41", 0), ("2026-W42", 2), ("2026-W43", 0)
    ]  # fmt: skip
    released = body["flow_distribution"]["released"]
    in_flight = body["flow_distribution"]["in_flight"]
    assert released["feature"] == {"count": 1, "share": 0.5}
    assert released["defect"] == {"count": 1, "share": 0.5} and released["risk"]["count"] == 0
    assert in_flight["feature"]["share"] == 0.5 and in_flight["debt"]["share"] == 0.5


def test_flow__items__per_flag_figures(history, viewer, clock):
    items = {item["flag"]: item for item in viewer.get(FLOW).json["items"]}
    assert set(items) == {"flag-a", "flag-b", "flag-c", "flag-e"}  # D never left off
    a, b, c, e = items["flag-a"], items["flag-b"], items["flag-c"], items["flag-e"]
    assert (a["flow_time_days"], a["wait_for_readiness_days"], a["active_days"]) == (14, 7, 7)
    assert (a["off_days"], a["early_access_days"], a["general_days"]) == (2, 8, 4)
    assert a["flow_efficiency"] == 0.5 and a["released_at"] == _day(clock, 14)
    assert (b["flow_time_days"], b["blocked_days"], b["active_days"]) == (10, 2, 8)
    assert b["flow_efficiency"] == 0.8
    assert c["status"] == "in_flight" and c["flow_time_days"] is None
    assert (c["age_days"], c["wait_for_readiness_days"], c["stage"]) == (18, 16, "early_access")
    assert (e["wait_for_readiness_days"], e["general_days"], e["stage"]) == (1, 13, "general")


def test_flow__objective_filter__only_its_flags(history, viewer):
    body = viewer.get(f"{FLOW}&objective={history['checkout']}").json
    assert [item["flag"] for item in body["items"]] == ["flag-a", "flag-b"]
    assert body["flow_load"]["now"] == 0 and body["objective_id"] == history["checkout"]
    platform = viewer.get(f"{FLOW}&objective={history['platform']}").json
    assert [item["flag"] for item in platform["items"]] == ["flag-c", "flag-e"]
    # C: early access 16; E: early access 2, general 13 → medians 9 and 13
    assert platform["stage_median_days"] == {"off": 2.0, "early_access": 9.0, "general": 13.0}
    assert platform["bottleneck"] == {"stage": "general", "median_days": 13.0}


def test_flow__ungated_environment__no_readiness_wait(engineer, marketing, viewer, clock):
    flow_history.build(engineer, marketing, clock)
    at_day(clock, 21)
    move(engineer, "flag-c", "early_access", env="staging")
    at_day(clock, 25)
    move(engineer, "flag-c", "released", env="staging")
    body = viewer.get(f"{FLOW}&environment=staging").json
    assert [i["flag"] for i in body["items"]] == ["flag-c"]
    item = body["items"][0]
    assert (item["flow_time_days"], item["wait_for_readiness_days"]) == (23, 0)
    assert item["early_access_days"] == 4 and item["flow_efficiency"] == 1.0


def test_flow__window_before_releases__nothing_released(history, viewer, clock):
    until = _day(clock, 10).replace("+", "%2B")
    body = viewer.get(f"{FLOW}&until={until}").json
    assert body["flow_time"]["count"] == 0 and body["flow_efficiency"] is None
    assert body["flow_load"]["now"] == 4  # A, B, C and E in flight at day 10
    assert body["period"]["as_of"] == _day(clock, 10)


def test_flow__default_period__last_90_days(history, viewer, clock):
    body = viewer.get("/api/v1/flow").json
    assert body["period"]["as_of"] == _day(clock, 20)
    assert body["period"]["since"] == _day(clock, -70)
    assert body["period"]["until"] is None
    assert body["flow_time"]["count"] == 2
    assert set(body["definitions"]) >= {
        "flow_time", "wait_for_readiness", "flow_efficiency", "active", "flow_load",
        "flow_velocity", "flow_distribution", "bottleneck",
    }  # fmt: skip


def test_flow__no_flags__empty_metrics_no_bottleneck(viewer):
    body = viewer.get("/api/v1/flow").json
    assert body["items"] == [] and body["bottleneck"] is None
    assert body["flow_time"] == {"count": 0, "mean_days": None, "p50_days": None, "p85_days": None}


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("since=2026-10-05T00:00:00%2B00:00&until=2026-10-01T00:00:00%2B00:00", 422, "until"),
        ("since=2026-10-01T00:00:00", 422, "since"),  # naive
        ("until=yesterday", 422, "until"),
        ("since=2030-01-01T00:00:00Z", 422, "since"),  # in the future
        ("since=2000-01-01T00:00:00Z", 422, "since"),  # longer than two years
        ("objective=abc", 422, "objective"),
        ("format=xml", 422, "format"),
        ("flag=x", 422, "flag"),  # unknown parameter
    ],
)
def test_flow__bad_filters__422_names_the_field(viewer, query, status, field):
    response = viewer.get(f"/api/v1/flow?{query}")
    assert response.status_code == status, response.json
    assert field in response.json["errors"]["query"]


@pytest.mark.parametrize("query", ["objective=999", "environment=nowhere"])
def test_flow__unknown_objective_or_environment__404(viewer, query):
    response = viewer.get(f"/api/v1/flow?{query}")
    assert response.status_code == 404 and "does not exist" in response.json["message"]


# --- exports --------------------------------------------------------------------------


def test_flow_export__csv__one_row_per_flag(history, viewer):
    response = viewer.get(f"{FLOW}&format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["flag"] for row in rows] == ["flag-a", "flag-b", "flag-c", "flag-e"]
    assert rows[0]["flow_time_days"] == "14.0" and rows[2]["flow_time_days"] == ""


def test_flow_export__ndjson__same_rows_as_json(history, viewer):
    response = viewer.get(f"{FLOW}&format=ndjson")
    assert response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert lines == viewer.get(FLOW).json["items"]


# --- stale flags ----------------------------------------------------------------------


def test_stale_flags__released_everywhere_for_30_days__listed_with_since(
    history, engineer, viewer, clock
):
    for environment in ("development", "staging"):
        move(engineer, "flag-a", "released", env=environment)
    assert viewer.get("/api/v1/stale-flags").json["items"] == []
    at_day(clock, 50)
    body = viewer.get("/api/v1/stale-flags?unevaluated_days=3650").json
    assert body["released_days"] == 30
    assert [item["flag"] for item in body["items"]] == ["flag-a"]
    (reason,) = body["items"][0]["reasons"]
    assert reason["reason"] == "released_everywhere" and reason["since"] == _day(clock, 20)
    assert reason["days"] == 30


def test_stale_flags__on_but_not_evaluated__listed_per_environment(history, viewer, sdk, clock):
    at_day(clock, 45)
    report = [{"flag": "flag-e", "count": 3, "last_evaluated_at": _day(clock, 44)}]
    assert sdk.post("/sdk/v1/metrics", json={"evaluations": report}).status_code == 202
    body = viewer.get("/api/v1/stale-flags?unevaluated_days=30&released_days=3650").json
    reasons = {item["flag"]: item["reasons"] for item in body["items"]}
    # A (31 days released) and B (34) are on in production, C in early access since day 4;
    # E was evaluated yesterday; D is off (on for nobody)
    assert set(reasons) == {"flag-a", "flag-b", "flag-c"}
    (c,) = reasons["flag-c"]
    assert c == {
        "reason": "not_evaluated", "environment": "production", "since": _day(clock, 4),
        "days": 41.0, "last_evaluated_at": None,
    }  # fmt: skip


@pytest.mark.parametrize("query", ["released_days=-1", "unevaluated_days=x", "days=3"])
def test_stale_flags__bad_arguments__422(viewer, query):
    assert viewer.get(f"/api/v1/stale-flags?{query}").status_code == 422


def test_stale_path__flags_stale__is_a_flag_key_not_the_report(viewer):
    assert viewer.get("/api/v1/flags/stale").status_code == 404


# --- roles ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/flow", "/api/v1/stale-flags", "/api/v1/flags/flag-a/timeline"]
)
def test_timing__every_role_reads__sdk_key_and_anonymous_refused(
    path, engineer, admin, marketing, viewer, sdk, anonymous
):
    create = flow_history.objective(engineer, "O", ["k"])
    flow_history.create_flag(engineer, "flag-a", "feature", create[1][0])
    for caller in (admin, engineer, marketing, viewer):
        assert caller.get(path).status_code == 200
    assert sdk.get(path).status_code == 403
    assert anonymous.get(path).status_code == 401
