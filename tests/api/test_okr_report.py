"""The OKR report through HTTP, on the scripted history of ``tests/api/flow_history.py``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api import flow_history

PROMISE_WORDS = ("due", "deadline", "eta", "target_date")


@pytest.fixture
def history(engineer, marketing, clock):
    return flow_history.build(engineer, marketing, clock)


def _report(caller, objective_id: int, query: str = "") -> Any:
    return caller.get(f"/api/v1/objectives/{objective_id}/report{query}")


def _keys(value: Any) -> set[str]:
    """Every key anywhere in a JSON document."""
    if isinstance(value, dict):
        return set(value).union(*(_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_keys(v) for v in value))
    return set()


def test_report__per_key_result__progress_flags_stages_readiness(history, viewer):
    body = _report(viewer, history["checkout"]).json
    assert body["objective"]["title"] == "Faster checkout"
    conversion, errors = body["key_results"]
    assert conversion["key_result"]["title"] == "conversion"
    assert conversion["key_result"]["progress"] == 0.5
    (flag_a,) = conversion["flags"]
    assert flag_a["key"] == "flag-a" and flag_a["flow_item"] == "feature"
    assert flag_a["environments"]["production"] == {
        "stage": "released", "rollout_percent": 0.0, "killed": False
    }  # fmt: skip
    assert flag_a["environments"]["staging"]["stage"] == "off"
    assert flag_a["readiness"] == {"ready": True, "done": 4, "total": 4, "missing": []}
    assert [flag["key"] for flag in errors["flags"]] == ["flag-b"]


def test_report__early_adopter_reach__distinct_members_minus_exclusions_where_on(history, viewer):
    (flag_a,) = _report(viewer, history["checkout"]).json["key_results"][0]["flags"]
    # beta-testers u1 u2 u3 + design-partners u3 u4 = 4 distinct, u2 excluded → 3;
    # the flag is off in development and staging, so it reaches nobody there
    assert flag_a["early_adopter_reach"] == {"development": 0, "staging": 0, "production": 3}


def test_report__flow_metrics__per_flag_per_key_result_and_objective(history, viewer):
    body = _report(viewer, history["checkout"], "?since=2026-10-01T09:00:00Z").json
    conversion, errors = body["key_results"]
    assert conversion["flags"][0]["flow"]["flow_time_days"] == 14
    assert conversion["flow"]["flow_time"]["mean_days"] == 14
    assert conversion["flow"]["wait_for_readiness"]["mean_days"] == 7
    assert errors["flow"]["flow_efficiency"] == 0.8
    assert body["flow"]["flow_time"] == {
        "count": 2, "mean_days": 12.0, "p50_days": 12.0, "p85_days": 13.4
    }  # fmt: skip
    assert body["flow"]["bottleneck"] == {"stage": "early_access", "median_days": 6.5}
    assert body["environment"] == "production" and "flow_efficiency" in body["definitions"]


def test_report__flags_outside_the_flow__listed_with_their_status(history, viewer):
    uptime = _report(viewer, history["platform"]).json["key_results"][0]
    flows = {flag["key"]: flag["flow"] for flag in uptime["flags"]}
    assert flows["flag-d"]["status"] == "off" and flows["flag-c"]["status"] == "in_flight"
    flag_c = next(flag for flag in uptime["flags"] if flag["key"] == "flag-c")
    assert flag_c["readiness"]["missing"] == flow_history.ITEMS
    assert flag_c["early_adopter_reach"]["production"] == 0  # in early access, no cohorts
    assert uptime["flow"]["waiting_for_readiness_now"] == 1


def test_report__no_promised_date_anywhere(history, viewer):
    for objective in (history["checkout"], history["platform"]):
        keys = _keys(_report(viewer, objective).json)
        assert {"key_results", "flags", "flow"} <= keys
        assert not [key for key in keys if any(word in key for word in PROMISE_WORDS)]


def test_report__objective_without_flags__empty_key_results(engineer, viewer):
    objective, _ = flow_history.objective(engineer, "Quiet", ["nothing yet"])
    body = _report(viewer, objective).json
    assert body["key_results"][0]["flags"] == [] and body["flow"]["bottleneck"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?since=2026-10-05T00:00:00Z&until=2026-10-01T00:00:00Z", "until"),
        ("?until=2026-10-05T00:00:00", "until"),
        ("?since=soon", "since"),
        ("?objective=1", "objective"),
    ],
)
def test_report__bad_period__422_names_field(engineer, viewer, query, field):
    objective, _ = flow_history.objective(engineer, "O", ["k"])
    response = _report(viewer, objective, query)
    assert response.status_code == 422 and field in response.json["errors"]["query"]


def test_report__unknown_objective_or_environment__404(engineer, viewer):
    objective, _ = flow_history.objective(engineer, "O", ["k"])
    assert _report(viewer, 999).status_code == 404
    assert _report(viewer, objective, "?environment=mars").status_code == 404


def test_report__every_role_reads__sdk_key_and_anonymous_refused(
    engineer, admin, marketing, viewer, sdk, anonymous
):
    objective, _ = flow_history.objective(engineer, "O", ["k"])
    for caller in (admin, engineer, marketing, viewer):
        assert _report(caller, objective).status_code == 200
    assert _report(sdk, objective).status_code == 403
    assert _report(anonymous, objective).status_code == 401


@pytest.mark.parametrize("objective_id", [0, 2**31, 2**63])
def test_report__id_beyond_integer_range__404_not_500(viewer, objective_id):
    assert _report(viewer, objective_id).status_code == 404
