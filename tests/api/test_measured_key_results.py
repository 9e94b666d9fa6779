"""Key results measured from flow metrics, on the scripted history of ``flow_history``.

At day 20 (2026-10-21 09:00, a Wednesday) of the history: in the checkout objective
A (feature) was released after 14 days and B (defect) after 10; C and E are in flight.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.api import flow_history


@pytest.fixture
def history(engineer, marketing, clock):
    return flow_history.build(engineer, marketing, clock)


def _measured(caller: Any, objective_id: int, measure: dict[str, Any], **fields: Any) -> Any:
    body = {"title": "Faster flow", "metric": "flow", "baseline": 20, "target": 7, **fields}
    return caller.post(
        f"/api/v1/objectives/{objective_id}/key-results", json={**body, "measure": measure}
    )


def test_flow_time_p50__computed_from_the_audit__with_direction_and_weekly_history(
    history, engineer, viewer
):
    measure = {"metric": "flow_time_p50", "objective_id": history["checkout"]}
    created = _measured(engineer, history["checkout"], measure)
    assert created.status_code == 201, created.json
    body = viewer.get(f"/api/v1/key-results/{created.json['id']}").json
    assert body["measured"] is True and body["direction"] == "lower_is_better"
    assert body["current"] == 12.0  # p50 of A's 14 days and B's 10
    assert body["progress"] == round(8 / 13, 4)  # 20 → 12 of 20 → 7
    assert body["unit"] == "days"
    assert body["measure"] == {
        "metric": "flow_time_p50", "environment": "production",
        "objective_id": history["checkout"], "value_stream": None, "flow_item": None,
        "window_days": 28,
    }  # fmt: skip
    points = body["history"]
    assert len(points) == 13 and points[-1]["value"] == 12.0
    # Monday 2026-10-19 00:00 closes W42: both released by then; W41 closed before B's release
    assert points[-2]["week"] == "2026-W42" and points[-2]["value"] == 12.0
    assert points[-3]["week"] == "2026-W41" and points[-3]["value"] is None


def test_history_weeks__query_chooses_how_many(history, engineer, viewer):
    created = _measured(engineer, history["checkout"], {"metric": "flow_time_p85"}).json
    body = viewer.get(f"/api/v1/key-results/{created['id']}?weeks=2").json
    assert [p["week"] for p in body["history"]] == ["2026-W41", "2026-W42", "2026-W43"]
    assert body["current"] == 13.4  # p85 of 10 and 14 (A, B: everything in production)
    assert viewer.get(f"/api/v1/key-results/{created['id']}?weeks=0").status_code == 422


def test_load_distribution_velocity_efficiency__from_the_same_history(history, engineer, viewer):
    checkout = history["checkout"]
    cases = [
        ({"metric": "flow_load"}, 5, 1, 2.0),  # C and E in flight
        ({"metric": "flow_distribution", "flow_item": "defect", "objective_id": checkout},
         0, 1, 0.5),
        ({"metric": "flow_velocity", "objective_id": checkout}, 0, 2, 0.5),  # 2 in 4 weeks
        ({"metric": "flow_efficiency", "objective_id": checkout}, 0, 1, round(15 / 24, 4)),
        ({"metric": "wait_for_readiness_p50", "objective_id": checkout}, 9, 1, 3.5),
    ]  # fmt: skip
    for measure, baseline, target, expected in cases:
        created = _measured(engineer, checkout, measure, baseline=baseline, target=target)
        assert created.status_code == 201, (measure, created.json)
        assert created.json["current"] == expected, measure


def test_objective_and_report__carry_measured_values(history, engineer, viewer):
    checkout = history["checkout"]
    _measured(engineer, checkout, {"metric": "flow_time_p50", "objective_id": checkout})
    objective = viewer.get(f"/api/v1/objectives/{checkout}").json
    assert [kr["measured"] for kr in objective["key_results"]] == [False, False, True]
    assert (
        objective["key_results"][0]["current"] == 5 and objective["key_results"][2]["current"] == 12
    )
    listed = viewer.get("/api/v1/objectives").json["items"]
    assert listed[0]["key_results"][2]["history"][-1]["value"] == 12.0
    report = viewer.get(f"/api/v1/objectives/{checkout}/report").json
    assert report["key_results"][2]["key_result"]["current"] == 12.0


def test_measured__current_is_never_typed_in(history, engineer):
    checkout = history["checkout"]
    refused = _measured(engineer, checkout, {"metric": "flow_load"}, current=3)
    assert refused.status_code == 422
    assert "current" in refused.json["errors"]["json"]
    created = _measured(engineer, checkout, {"metric": "flow_load"}, baseline=5, target=1)
    path = f"/api/v1/key-results/{created.json['id']}"
    etag = engineer.get(path).headers["ETag"]
    patched = engineer.patch(path, json={"current": 1}, headers={"If-Match": etag})
    assert patched.status_code == 422 and "current" in patched.json["errors"]["json"]
    # removing the measure makes it typed in again
    typed = engineer.patch(path, json={"measure": None}, headers={"If-Match": etag})
    assert typed.status_code == 200 and typed.json["measured"] is False
    etag = typed.headers["ETag"]
    assert (
        engineer.patch(path, json={"current": 1}, headers={"If-Match": etag}).json["current"] == 1
    )


@pytest.mark.parametrize(
    ("measure", "fields", "field"),
    [
        ({"metric": "flow_time_p50"}, {"baseline": 5, "target": 9}, "target"),
        ({"metric": "flow_velocity"}, {"baseline": 5, "target": 2}, "target"),
        ({"metric": "flow_distribution"}, {"baseline": 0, "target": 1}, "measure.flow_item"),
        ({"metric": "flow_load", "flow_item": "risk"}, {}, "measure.flow_item"),
        ({"metric": "flow_load", "environment": "nowhere"}, {}, "measure.environment"),
        ({"metric": "flow_load", "objective_id": 9999}, {}, "measure.objective_id"),
        ({"metric": "speed"}, {}, "measure"),
        ({"metric": "flow_load", "window_days": 3}, {}, "measure"),
    ],
)
def test_measure__refused__422_names_the_field(history, engineer, measure, fields, field):
    response = _measured(engineer, history["checkout"], measure, **fields)
    assert response.status_code == 422, response.json
    assert field in response.json["errors"]["json"]


def test_measured__audited_with_its_measure(history, engineer, admin):
    _measured(engineer, history["checkout"], {"metric": "flow_load"}, baseline=5, target=1)
    events = admin.get("/api/v1/audit?action=key_result.created&limit=100").json["items"]
    measured = [e["after"]["measure"] for e in events if e["after"].get("measure")]
    assert [m["metric"] for m in measured] == ["flow_load"]


def test_typed_in__unchanged(engineer, viewer):
    objective = engineer.post(
        "/api/v1/objectives", json={"title": "Grow", "period": "2026-Q4", "owner": "growth"}
    ).json
    body = {"title": "NPS", "metric": "nps", "baseline": 10, "target": 40, "current": 25}
    created = engineer.post(f"/api/v1/objectives/{objective['id']}/key-results", json=body).json
    assert created["measured"] is False and created["measure"] is None
    assert created["history"] is None and created["current"] == 25 and created["progress"] == 0.5
    assert created["direction"] == "higher_is_better"


_REPORTED = {
    "flow_time_p50": lambda m: m["flow_time"]["p50_days"],
    "flow_time_p85": lambda m: m["flow_time"]["p85_days"],
    "wait_for_readiness_p50": lambda m: m["wait_for_readiness"]["p50_days"],
    "flow_load": lambda m: float(m["flow_load"]["now"]),
    "flow_velocity": lambda m: float(m["flow_velocity"]["per_week"]),
    "flow_efficiency": lambda m: m["flow_efficiency"],
    "flow_distribution": lambda m: (
        m["flow_distribution"]["released"]["feature"]["share"]
        if m["flow_velocity"]["total"]
        else None
    ),
}


@pytest.mark.parametrize("metric", sorted(_REPORTED))
@pytest.mark.parametrize("window_days", [7, 28])
def test_history__every_point__what_the_flow_report_of_its_window_says(
    history, engineer, viewer, metric, window_days
):
    """Measured key results fold each flag once for all their points, leaving out flags
    that cannot count for a point's window: each point must still be the flow report's
    figure over the window ending there."""
    worse, better = (0, 5) if metric in {"flow_velocity", "flow_efficiency"} else (9, 1)
    measure = {"metric": metric, "window_days": window_days}
    if metric == "flow_distribution":
        measure["flow_item"] = "feature"
    created = _measured(engineer, history["checkout"], measure, baseline=worse, target=better)
    assert created.status_code == 201, created.json
    points = viewer.get(f"/api/v1/key-results/{created.json['id']}?weeks=6").json["history"]
    for n, point in enumerate(points):
        at = datetime.fromisoformat(point["at"])
        since = (at - timedelta(days=window_days)).isoformat()
        until = "" if n == len(points) - 1 else f"&until={quote(point['at'])}"
        report = viewer.get(f"/api/v1/flow?since={quote(since)}{until}")
        assert report.status_code == 200, report.json
        assert point["value"] == _REPORTED[metric](report.json), (metric, point)
