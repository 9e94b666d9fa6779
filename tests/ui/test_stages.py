"""Stage, ramp, kill switch, cohorts and exclusions from the flag page; roles as in the API."""

from __future__ import annotations

import re

import pytest

from tests.ui.conftest import html

STATE = "/ui/flags/one-click/environments"


@pytest.fixture
def flag(ui_engineer, engineer, key_result):
    ui_engineer.post("/ui/flags", {"key": "one-click", "name": "One click", "flow_item": "feature",
                                   "key_result_id": str(key_result)})  # fmt: skip
    engineer.post("/api/v1/cohorts", json={"key": "early", "name": "Early adopters"})
    return "one-click"


def _api_state(engineer, env="production"):
    return engineer.get(f"/api/v1/flags/one-click/environments/{env}").json


def test_stage_move__early_access__done_and_audited(ui_engineer, engineer, flag):
    response = ui_engineer.post(f"{STATE}/production/stage", {"stage": "early_access"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/ui/flags/one-click#env-production")
    assert _api_state(engineer)["stage"] == "early_access"
    page = html(ui_engineer.get("/ui/flags/one-click"))
    assert "Now early access in production." in page
    events = engineer.get("/api/v1/audit?flag=one-click&action=flag.stage_changed").json["items"]
    assert events[-1]["actor"] == "engineer-token" and events[-1]["actor_role"] == "engineer"


def test_stage_move__general_while_not_ready__409_naming_items_by_label(
    ui_engineer, engineer, flag
):
    ui_engineer.post(f"{STATE}/production/stage", {"stage": "early_access"})
    response = ui_engineer.post(
        f"{STATE}/production/stage", {"stage": "general", "rollout_percent": "10"}
    )
    assert response.status_code == 409
    page = html(response)
    assert "waits for launch readiness" in page
    assert "Documentation published" in page and "Sales briefed" in page
    assert _api_state(engineer)["stage"] == "early_access"


@pytest.mark.parametrize(
    "form", [{"stage": "released"}, {"stage": "general", "rollout_percent": "100"}]
)
def test_stage_move__retired_then_general_exposure_before_ready__409(
    ui_engineer, engineer, flag, form
):
    assert ui_engineer.post(f"{STATE}/production/stage", {"stage": "retired"}).status_code == 303
    response = ui_engineer.post(f"{STATE}/production/stage", form)
    assert response.status_code == 409
    assert "waits for launch readiness" in html(response)
    assert _api_state(engineer)["stage"] == "retired"


def test_stage_move__ungated_environment__general_at_once(ui_engineer, engineer, flag):
    response = ui_engineer.post(
        f"{STATE}/staging/stage", {"stage": "general", "rollout_percent": "25"}
    )
    assert response.status_code == 303
    state = _api_state(engineer, "staging")
    assert state["stage"] == "general" and state["rollout_percent"] == 25


def test_stage_move__percent_sent_with_another_stage__ignored(ui_engineer, engineer, flag):
    response = ui_engineer.post(
        f"{STATE}/staging/stage", {"stage": "released", "rollout_percent": "5"}
    )
    assert response.status_code == 303
    assert _api_state(engineer, "staging")["stage"] == "released"


@pytest.mark.parametrize(
    ("percent", "reason"),
    [("150", "between 0 and 100"), ("ten", "Enter a number"), ("1.234", "at most 2 decimals")],
)
def test_stage_move__bad_percent__422_keeps_it(ui_engineer, flag, percent, reason):
    response = ui_engineer.post(
        f"{STATE}/staging/stage", {"stage": "general", "rollout_percent": percent}
    )
    assert response.status_code == 422
    page = html(response)
    assert reason.lower() in page.lower()
    assert f'value="{percent}"' in page


def test_stage_move__same_stage__409_in_words(ui_engineer, flag):
    response = ui_engineer.post(f"{STATE}/staging/stage", {"stage": "off"})
    assert response.status_code == 409
    assert "already off" in html(response)


@pytest.mark.parametrize("role", ["marketing", "viewer"])
def test_stage_controls__roles_without_move_stages__hidden_and_403(
    ui, secrets, engineer, flag, role
):
    browser = ui(secrets[role])
    page = html(browser.get("/ui/flags/one-click"))
    for control in ("Start early access", "Kill switch", "Release to everyone", "Save cohorts"):
        assert control not in page
    for action, data in (("stage", {"stage": "early_access"}), ("kill", {}), ("resume", {}),
                         ("cohorts", {"cohorts": "early", "version": "1"}), ("exclusions", {"users": "u"})):  # fmt: skip
        response = browser.post(f"{STATE}/production/{action}", data)
        assert response.status_code == 403, action
    assert _api_state(engineer)["stage"] == "off"


def test_kill_switch__kill_then_resume(ui_engineer, engineer, flag):
    assert ui_engineer.post(f"{STATE}/production/kill").status_code == 303
    assert _api_state(engineer)["killed"] is True
    assert "Resume (undo the kill switch)" in html(ui_engineer.get("/ui/flags/one-click"))
    assert ui_engineer.post(f"{STATE}/production/resume").status_code == 303
    assert _api_state(engineer)["killed"] is False


def test_cohorts__set_with_the_shown_version(ui_engineer, engineer, flag):
    version = str(_api_state(engineer)["version"])
    response = ui_engineer.post(
        f"{STATE}/production/cohorts", {"cohorts": "early", "version": version}
    )
    assert response.status_code == 303
    assert _api_state(engineer)["cohorts"] == ["early"]
    assert 'value="early" checked' in html(ui_engineer.get("/ui/flags/one-click"))


def test_cohorts__changed_meanwhile__412_names_the_change_keeps_the_choice(
    ui_engineer, engineer, flag
):
    # Given the page as the engineer opened it (its version and the audit head it saw)
    page = html(ui_engineer.get("/ui/flags/one-click"))
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    seen = re.search(r'name="seen" value="(\d+)"', page).group(1)
    engineer.post("/api/v1/cohorts", json={"key": "staff", "name": "Staff"})
    # When someone else saves production's cohorts first
    etag = engineer.get(f"/api/v1/flags/{flag}/environments/production").headers["ETag"]
    engineer.put(f"/api/v1/flags/{flag}/environments/production/cohorts",
                 json={"cohorts": ["staff"]}, headers={"If-Match": etag})  # fmt: skip
    response = ui_engineer.post(
        f"{STATE}/production/cohorts", {"cohorts": "early", "version": version, "seen": seen}
    )
    # Then nothing is saved, the page says what changed and by whom, the choice is kept
    assert response.status_code == 412
    shown = html(response)
    assert "Not saved: someone changed this since you opened the page" in shown
    assert "Early-access cohorts in production: — → staff" in shown
    assert 'id="cohorts-production-early" name="cohorts" value="early" checked' in shown
    assert "Reload the latest" in shown
    assert _api_state(engineer)["cohorts"] == ["staff"]
    assert ui_engineer.get("/ui/flags/one-click").status_code == 200  # reload: no re-send


def test_refused_move__redirected_to_the_page__reload_sends_nothing(ui_engineer, flag):
    response = ui_engineer.client.post(
        f"{STATE}/production/stage",
        data={"stage": "released", "csrf_token": ui_engineer.csrf_token()},
    )
    assert response.status_code == 303  # post/redirect/get, refusals too
    assert response.headers["Location"].endswith("/ui/flags/one-click#env-production")
    shown = ui_engineer.get(response.headers["Location"])
    assert shown.status_code == 409 and "waits for launch readiness" in html(shown)
    again = ui_engineer.get(response.headers["Location"])
    assert again.status_code == 200 and "waits for launch readiness in this" not in html(again)


def test_cohorts__unknown_cohort__422(ui_engineer, engineer, flag):
    version = str(_api_state(engineer)["version"])
    response = ui_engineer.post(
        f"{STATE}/production/cohorts", {"cohorts": "ghost", "version": version}
    )
    assert response.status_code == 422
    assert "no such cohorts: ghost" in html(response)


EVERYONE = [{"attribute": "key", "op": "neq", "values": ["\u0001never"]}]


def test_cohorts__catch_all_in_gated_production_before_ready__409_in_words(
    ui_engineer, engineer, flag
):
    engineer.post("/api/v1/cohorts", json={"key": "all", "name": "All", "rules": EVERYONE})
    page = html(ui_engineer.get("/ui/flags/one-click"))
    assert 'class="catch-all"' in page and "cannot be chosen here until readiness" in page
    version = str(_api_state(engineer)["version"])
    response = ui_engineer.post(
        f"{STATE}/production/cohorts", {"cohorts": "all", "version": version}
    )
    assert response.status_code == 409
    assert "is a catch-all" in html(response)
    assert _api_state(engineer)["cohorts"] == []
    staging = str(_api_state(engineer, "staging")["version"])
    saved = ui_engineer.post(f"{STATE}/staging/cohorts", {"cohorts": "all", "version": staging})
    assert saved.status_code == 303  # not gated: allowed


def test_exclusions__one_per_line_saved_and_shown(ui_engineer, engineer, flag):
    version = str(_api_state(engineer)["version"])
    users = "user-1\nuser-2\n\nuser-1\n"
    response = ui_engineer.post(
        f"{STATE}/production/exclusions", {"users": users, "version": version}
    )
    assert response.status_code == 303
    assert _api_state(engineer)["exclusions"] == ["user-1", "user-2"]


def test_exclusions__too_long_key__422_names_it_and_keeps_text(ui_engineer, engineer, flag):
    version = str(_api_state(engineer)["version"])
    users = "ok-user\n" + "x" * 300
    response = ui_engineer.post(
        f"{STATE}/production/exclusions", {"users": users, "version": version}
    )
    assert response.status_code == 422
    page = html(response)
    assert "ok-user" in page and 'id="exclusions-production-users-error"' in page
