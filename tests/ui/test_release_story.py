"""The staged release, start to finish, through the UI's forms only (both backends).

engineer: objective, key result, flag, cohort with members → early access → general
refused → marketing ticks every item → engineer ramps 10 → 50 → 100 → released; the
audit shows each step with its actor and the chain verifies.
"""

from __future__ import annotations

from tests.ui.conftest import html

ITEMS = ("docs", "announcement", "support_enablement", "sales_briefing")
PROD = "/ui/flags/one-click/environments/production"


def _setup_through_forms(eng):
    assert (
        eng.post(
            "/ui/okrs/objectives",
            {"title": "Faster checkout", "period": "2026-Q4", "owner": "payments"},
        ).status_code
        == 303
    )
    board = html(eng.get("/ui/okrs"))
    objective_id = board.split("/ui/okrs/objectives/")[1].split("/")[0]
    kr = {
        "title": "Checkout conversion",
        "metric": "conversion",
        "baseline": "0.31",
        "target": "0.36",
        "unit": "ratio",
    }
    assert eng.post(f"/ui/okrs/objectives/{objective_id}/key-results", kr).status_code == 303
    form = html(eng.get("/ui/flags/new"))
    key_result_id = (
        form.split('<optgroup label="Faster checkout (2026-Q4)">')[1]
        .split('value="')[1]
        .split('"')[0]
    )
    flag = {
        "key": "one-click",
        "name": "One-click checkout",
        "flow_item": "feature",
        "key_result_id": key_result_id,
    }
    assert eng.post("/ui/flags", flag).status_code == 303
    cohort = {
        "key": "early-adopters",
        "name": "Early adopters",
        "rule_rows": "1",
        "rules-0-attribute": "plan",
        "rules-0-op": "in",
        "rules-0-values": "beta",
        "members": "vip-1\nvip-2",
    }
    assert eng.post("/ui/cohorts", cohort).status_code == 303


def test_release_story__through_the_pages(ui_engineer, ui_marketing, engineer, sdk):
    eng, mkt = ui_engineer, ui_marketing
    _setup_through_forms(eng)
    version = engineer.get("/api/v1/flags/one-click/environments/production").json["version"]
    assert (
        eng.post(
            f"{PROD}/cohorts", {"cohorts": "early-adopters", "version": str(version)}
        ).status_code
        == 303
    )
    assert eng.post(f"{PROD}/stage", {"stage": "early_access"}).status_code == 303
    on = sdk.post(
        "/sdk/v1/evaluate", json={"context": {"key": "vip-1"}, "flags": ["one-click"]}
    ).json
    assert on["results"]["one-click"]["enabled"] is True

    refused = eng.post(f"{PROD}/stage", {"stage": "general", "rollout_percent": "10"})
    assert refused.status_code == 409 and "Documentation published" in html(refused)
    assert "Waiting on us" in html(mkt.get("/ui/readiness")) and "One-click checkout" in html(
        mkt.get("/ui/readiness")
    )
    for item in ITEMS:
        assert (
            mkt.post(
                f"/ui/flags/one-click/readiness/{item}", {"done": "true", "note": f"{item} ok"}
            ).status_code
            == 303
        )
    assert "Ready since" in html(mkt.get("/ui/flags/one-click/readiness"))

    for percent in ("10", "50", "100"):
        assert (
            eng.post(f"{PROD}/stage", {"stage": "general", "rollout_percent": percent}).status_code
            == 303
        )
    assert eng.post(f"{PROD}/stage", {"stage": "released"}).status_code == 303
    assert (
        engineer.get("/api/v1/flags/one-click/environments/production").json["stage"] == "released"
    )

    audit = html(eng.get("/ui/audit?flag=one-click"))
    assert audit.count("<code>flag.stage_changed</code>") == 5 and "marketing-token" in audit
    assert "Chain intact" in html(eng.get("/ui/audit/verify"))
