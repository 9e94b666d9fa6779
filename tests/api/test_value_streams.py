"""Value streams through HTTP, on the scripted history of ``flow_history``.

Streams: ``checkout`` owns "Faster checkout" (flags A, B), ``platform`` owns "Reliable
platform" (C, D, E). Hand-computed steps (days) over the default 90-day window at day 20:

- checkout: building A 2, B 2; waiting for readiness A 7; early access A 1, B 5;
  ramp A 4, B 3 → medians 2, 7, 3, 3.5: the bottleneck is waiting for readiness (7).
- platform: building C 2, E 2; waiting for readiness C 16, E 1; early access E 1;
  ramp E 13 → medians 2, 8.5, 1, 13: the bottleneck is the ramp (13), and it is the
  step that holds delivery back most of all streams.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api import flow_history


def _stream(caller: Any, key: str, name: str) -> Any:
    return caller.post("/api/v1/value-streams", json={"key": key, "name": name})


def _assign(caller: Any, objective_id: int, stream: str | None) -> Any:
    path = f"/api/v1/objectives/{objective_id}"
    etag = caller.get(path).headers["ETag"]
    return caller.patch(path, json={"value_stream": stream}, headers={"If-Match": etag})


@pytest.fixture
def history(engineer, marketing, clock):
    ids = flow_history.build(engineer, marketing, clock)
    assert _stream(engineer, "checkout", "Checkout").status_code == 201
    assert _stream(engineer, "platform", "Platform").status_code == 201
    assert _assign(engineer, ids["checkout"], "checkout").status_code == 200
    assert _assign(engineer, ids["platform"], "platform").status_code == 200
    return ids


def test_streams__created_listed_audited(history, viewer, admin):
    assert [s["key"] for s in viewer.get("/api/v1/value-streams").json["items"]] == [
        "checkout", "platform",
    ]  # fmt: skip
    assert viewer.get("/api/v1/value-streams/platform").json["name"] == "Platform"
    assert (
        viewer.get(f"/api/v1/objectives/{history['checkout']}").json["value_stream"] == "checkout"
    )
    events = admin.get("/api/v1/audit?action=value_stream.created").json["items"]
    assert sorted(e["entity_key"] for e in events) == ["checkout", "platform"]


def test_comparison__steps_bottleneck_and_what_holds_delivery_back(history, viewer):
    body = viewer.get("/api/v1/flow/value-streams").json
    checkout, platform = body["value_streams"]
    assert checkout["value_stream"] == "checkout"
    assert {k: v["median_days"] for k, v in checkout["steps"].items()} == {
        "building": 2.0, "waiting_for_readiness": 7.0, "early_access": 3.0, "ramp": 3.5,
    }  # fmt: skip
    assert checkout["bottleneck"] == {"step": "waiting_for_readiness", "median_days": 7.0}
    assert checkout["flow"]["flow_time"]["count"] == 2
    assert platform["bottleneck"] == {"step": "ramp", "median_days": 13.0}
    assert platform["steps"]["waiting_for_readiness"] == {"median_days": 8.5, "total_days": 17.0}
    assert platform["in_flight_now"] == {"waiting_for_readiness": 1, "early_access": 0, "ramp": 1}
    assert body["holds_back"] == {"value_stream": "platform", "step": "ramp", "median_days": 13.0}


def test_comparison__flags_without_a_stream_grouped_apart(history, engineer, viewer):
    assert _assign(engineer, history["platform"], None).status_code == 200
    streams = viewer.get("/api/v1/flow/value-streams").json["value_streams"]
    assert [s["value_stream"] for s in streams] == ["checkout", "platform", None]
    assert streams[1]["bottleneck"] is None and streams[2]["bottleneck"]["step"] == "ramp"


def test_flow_report_and_measured_key_result__per_stream(history, engineer, viewer):
    report = viewer.get("/api/v1/flow?value_stream=checkout").json
    assert {item["flag"] for item in report["items"]} == {"flag-a", "flag-b"}
    assert report["flow_time"]["mean_days"] == 12.0
    body = {"title": "Less in flight", "metric": "load", "baseline": 5, "target": 1,
            "measure": {"metric": "flow_load", "value_stream": "platform"}}  # fmt: skip
    created = engineer.post(f"/api/v1/objectives/{history['platform']}/key-results", json=body)
    assert created.status_code == 201 and created.json["current"] == 2.0  # C and E


@pytest.mark.parametrize(
    ("call", "status", "field"),
    [
        (lambda e, ids: _stream(e, "checkout", "again"), 409, None),
        (lambda e, ids: _stream(e, "Bad Key", "x"), 422, "key"),
        (lambda e, ids: _assign(e, ids["checkout"], "nowhere"), 422, "value_stream"),
        (lambda e, ids: e.get("/api/v1/flow?value_stream=nowhere"), 404, None),
        (lambda e, ids: e.get("/api/v1/value-streams/nowhere"), 404, None),
        (lambda e, ids: e.post(f"/api/v1/objectives/{ids['checkout']}/key-results", json={
            "title": "t", "metric": "m", "baseline": 5, "target": 1,
            "measure": {"metric": "flow_load", "value_stream": "nowhere"}}), 422,
         "measure.value_stream"),
    ],
)  # fmt: skip
def test_refusals__name_the_field(history, engineer, call, status, field):
    response = call(engineer, history)
    assert response.status_code == status, response.json
    if field:
        assert field in response.json["errors"]["json"]


def test_only_okr_editors_create_streams(viewer, marketing):
    assert _stream(viewer, "x", "X").status_code == 403
    assert _stream(marketing, "x", "X").status_code == 403


def test_measured_key_results__read_together__same_as_each_alone(history, engineer, viewer):
    """The objectives list reads the audit once for every scope in an environment; each
    key result must still see only its own stream's flags (or every flag)."""
    scopes = [("checkout", "checkout"), ("platform", "platform"), ("platform", None)]
    made = []
    for objective, stream in scopes:
        measure = {"metric": "flow_load", "value_stream": stream}
        body = {"title": f"Load {stream}", "metric": "load", "baseline": 9, "target": 1,
                "measure": measure}  # fmt: skip
        response = engineer.post(f"/api/v1/objectives/{history[objective]}/key-results", json=body)
        assert response.status_code == 201, response.json
        made.append(response.json)
    alone = {kr["id"]: kr["history"] for kr in made}
    checkout, platform, everything = (kr["current"] for kr in made)
    assert platform == 2.0 and everything == checkout + platform  # C and E; both streams
    together = {
        kr["id"]: kr["history"]
        for objective in viewer.get("/api/v1/objectives").json["items"]
        for kr in objective["key_results"]
        if kr["id"] in alone
    }
    assert together == alone
