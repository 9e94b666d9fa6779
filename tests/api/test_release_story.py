"""The whole staged release through HTTP, as the issue tells it.

objective → key result → flag → cohort with members and a rule → early access
(cohort on, others off) → general refused (409) → marketing marks every item →
general at 10 %, 50 %, 100 % (users on at 10 % stay on) → released → the audit lists
each step and verifies.
"""

from __future__ import annotations

import json

from flagsvc_sdk.engine import evaluate
from flagsvc_sdk.engine import load_snapshot

USERS = [f"user-{n}" for n in range(2000)]
FLAG = "/api/v1/flags/one-click-checkout"
PRODUCTION = f"{FLAG}/environments/production"


def _on(sdk, users, attributes=None):
    """The users for whom the flag is on, by the engine on the SDK's snapshot.

    One snapshot download and local evaluation, as an SDK does it: thousands of users
    per ramp step would otherwise be thousands of HTTP round trips. ``_on_served``
    asks the server for the few the story checks through ``/sdk/v1/evaluate``.
    """
    snapshot = load_snapshot(json.loads(sdk.get("/sdk/v1/snapshot").data))
    context = attributes or {}
    return {
        user
        for user in users
        if evaluate(snapshot, "one-click-checkout", {"key": user, **context}).enabled
    }


def _on_served(sdk, users, attributes=None):
    """The users for whom the flag is on, asked through server-side evaluation."""
    on = set()
    for user in users:
        context = {"key": user, **(attributes or {})}
        body = sdk.post(
            "/sdk/v1/evaluate", json={"context": context, "flags": ["one-click-checkout"]}
        ).json
        if body["results"]["one-click-checkout"]["enabled"]:
            on.add(user)
    return on


def _set_up_flag(engineer):
    objective = engineer.post(
        "/api/v1/objectives",
        json={"title": "Faster checkout", "period": "2026-Q4", "owner": "payments"},
    ).json
    kr = engineer.post(
        f"/api/v1/objectives/{objective['id']}/key-results",
        json={
            "title": "Checkout conversion",
            "metric": "conversion",
            "baseline": 0.31,
            "target": 0.36,
            "unit": "ratio",
        },
    ).json
    flag = {
        "key": "one-click-checkout",
        "name": "One-click checkout",
        "flow_item": "feature",
        "key_result_id": kr["id"],
    }
    assert engineer.post("/api/v1/flags", json=flag).status_code == 201
    cohort = {
        "key": "early-adopters",
        "name": "Early adopters",
        "rules": [{"attribute": "plan", "op": "in", "values": ["beta"]}],
        "opt_in": True,
    }
    assert engineer.post("/api/v1/cohorts", json=cohort).status_code == 201
    assert (
        engineer.post(
            "/api/v1/cohorts/early-adopters/members", json={"add": ["vip-1", "vip-2"]}
        ).status_code
        == 200
    )


def _early_access(engineer, sdk):
    etag = engineer.get(PRODUCTION).headers["ETag"]
    put = engineer.put(
        f"{PRODUCTION}/cohorts", json={"cohorts": ["early-adopters"]}, headers={"If-Match": etag}
    )
    assert put.status_code == 200, put.json
    assert engineer.post(f"{PRODUCTION}/stage", json={"stage": "early_access"}).status_code == 200
    for on in (_on, _on_served):  # the SDK's local answer and the server's agree
        assert on(sdk, ["vip-1", "vip-2"]) == {"vip-1", "vip-2"}  # members
        assert on(sdk, ["someone"], {"plan": "beta"}) == {"someone"}  # rule match
        assert on(sdk, USERS[:20]) == set()  # everybody else waits
    assert _on(sdk, USERS) == set()


def _readiness(engineer, marketing):
    refused = engineer.post(f"{PRODUCTION}/stage", json={"stage": "general", "rollout_percent": 10})
    assert refused.status_code == 409
    assert refused.json["missing_readiness"] == [
        "docs",
        "announcement",
        "support_enablement",
        "sales_briefing",
    ]
    for item in refused.json["missing_readiness"]:
        assert engineer.put(f"{FLAG}/readiness/{item}", json={"done": True}).status_code == 403
        assert (
            marketing.put(
                f"{FLAG}/readiness/{item}", json={"done": True, "note": "done"}
            ).status_code
            == 200
        )
    assert marketing.post(f"{PRODUCTION}/stage", json={"stage": "general"}).status_code == 403


def _ramp(engineer, sdk):
    previously_on: set[str] = set()
    for percent, low, high in ((10, 120, 280), (50, 850, 1150), (100, 2000, 2000)):
        moved = engineer.post(
            f"{PRODUCTION}/stage", json={"stage": "general", "rollout_percent": percent}
        )
        assert moved.status_code == 200, moved.json
        on = _on(sdk, USERS)
        assert _on_served(sdk, USERS[:20]) == on & set(USERS[:20])
        assert previously_on <= on  # raising the ramp only adds users
        assert low <= len(on) <= high
        previously_on = on
    assert engineer.post(f"{PRODUCTION}/stage", json={"stage": "released"}).status_code == 200
    assert _on(sdk, USERS) == set(USERS)
    assert _on_served(sdk, USERS[:20]) == set(USERS[:20])


def test_release_story__cohorts_first_then_gated_ramp__audited_and_verified(
    engineer, marketing, sdk, viewer
):
    _set_up_flag(engineer)
    _early_access(engineer, sdk)
    _readiness(engineer, marketing)
    _ramp(engineer, sdk)

    events = viewer.get("/api/v1/audit?flag=one-click-checkout&limit=500").json["items"]
    actions = [e["action"] for e in events]
    assert actions[0] == "flag.created"
    assert actions.count("readiness.item_marked") == 4 and "flag.ready" in actions
    stages = [
        (e["environment"], e["after"]["stage"], e["after"].get("rollout_percent"))
        for e in events
        if e["action"] == "flag.stage_changed"
    ]
    assert stages == [
        ("production", "early_access", 0),
        ("production", "general", 10),
        ("production", "general", 50),
        ("production", "general", 100),
        ("production", "released", 0),
    ]
    assert {e["actor_role"] for e in events if e["action"] == "readiness.item_marked"} == {
        "marketing"
    }
    assert viewer.get("/api/v1/audit/verify").json["valid"] is True
