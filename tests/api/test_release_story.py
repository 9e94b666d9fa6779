"""The whole staged release through HTTP, as the issue tells it.

objective → key result → flag → cohort with members and a rule → early access
(cohort on, others off) → general refused (409) → marketing marks every item →
general at 10 %, 50 %, 100 % (users on at 10 % stay on) → released → the audit lists
each step and verifies.
"""

from __future__ import annotations

USERS = [f"user-{n}" for n in range(2000)]
FLAG = "/api/v1/flags/one-click-checkout"
PRODUCTION = f"{FLAG}/environments/production"


def _on(sdk, users, attributes=None):
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
    assert _on(sdk, ["vip-1", "vip-2"]) == {"vip-1", "vip-2"}  # members
    assert _on(sdk, ["someone"], {"plan": "beta"}) == {"someone"}  # rule match
    assert _on(sdk, USERS[:200]) == set()  # everybody else waits


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
        assert previously_on <= on  # raising the ramp only adds users
        assert low <= len(on) <= high
        previously_on = on
    assert engineer.post(f"{PRODUCTION}/stage", json={"stage": "released"}).status_code == 200
    assert _on(sdk, USERS[:50]) == set(USERS[:50])


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
