"""The flag page offers only the valid next steps, in story order, and says why the gate
refuses one before the click (the domain's own rule through ``check_move``)."""

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


def _card(ui_engineer, env: str) -> str:
    page = html(ui_engineer.get("/ui/flags/one-click"))
    start = page.index(f'id="env-{env}"')
    return page[start : page.index("</section>", start)]


def _buttons(card: str) -> list[str]:
    return re.findall(r'<button type="submit"[^>]*aria-label="([^"]+)"', card)


def test_off_flag__story_order_and_no_kill_switch(ui_engineer, flag):
    card = _card(ui_engineer, "staging")
    assert "Off: deployed dark, on for nobody." in card
    buttons = _buttons(card)
    assert buttons.index("Start early access in Staging") < buttons.index(
        "Start general rollout at 10 % in Staging"
    )
    assert "Kill switch" not in card  # off reaches nobody: nothing to kill
    assert "No cohort yet: early access here reaches nobody." in card
    assert 'data-confirm="No early-access cohort is chosen here' in card


def test_gated_without_readiness__general_disabled_with_the_reason(ui_engineer, flag):
    ui_engineer.post(f"{STATE}/production/stage", {"stage": "early_access"})
    card = _card(ui_engineer, "production")
    for words in (
        "Start general rollout at 10 % in Production",
        "Release to everyone in Production",
    ):
        button = re.search(rf'<button [^>]*aria-label="{words}"', card).group(0)
        assert " disabled" in button and 'aria-describedby="stage-production-gate"' in button
    reason = re.search(r'id="stage-production-gate">([^<]+)<', card).group(1)
    assert reason.startswith("Waits for launch readiness: Documentation published")
    assert "Kill switch" in card


def test_not_gated__the_same_steps_enabled(ui_engineer, flag):
    ui_engineer.post(f"{STATE}/staging/stage", {"stage": "early_access"})
    card = _card(ui_engineer, "staging")
    button = re.search(r'<button [^>]*aria-label="Start general rollout at 10 % in Staging"', card)
    assert " disabled" not in button.group(0)


def test_general_ramp__only_higher_steps_forward_lower_under_roll_back(ui_engineer, flag):
    ui_engineer.post(f"{STATE}/staging/stage", {"stage": "general", "rollout_percent": "25"})
    buttons = _buttons(_card(ui_engineer, "staging"))
    assert "Ramp up to 50 % in Staging" in buttons and "Ramp up to 10 % in Staging" not in buttons
    assert "Back to early access (cohorts only) in Staging" in buttons


def test_general_100_and_released__told_apart(ui_engineer, flag):
    ui_engineer.post(f"{STATE}/staging/stage", {"stage": "general", "rollout_percent": "100"})
    assert "still as a ramp. Release it to say the work is done" in _card(ui_engineer, "staging")
    ui_engineer.post(f"{STATE}/staging/stage", {"stage": "released"})
    card = _card(ui_engineer, "staging")
    assert "Released: on for everyone, the work is done." in card
    assert "Back to general rollout at 100 % in Staging" in _buttons(card)


def test_retired__no_kill_switch_no_retire_start_again(ui_engineer, flag):
    ui_engineer.post(f"{STATE}/staging/stage", {"stage": "retired"})
    card = _card(ui_engineer, "staging")
    assert "Kill switch" not in card and "Retire in Staging" not in _buttons(card)
    assert "Start early access in Staging" in _buttons(card)


def test_killed__resume_first_and_said_so(ui_engineer, flag):
    ui_engineer.post(f"{STATE}/staging/stage", {"stage": "early_access"})
    ui_engineer.post(f"{STATE}/staging/kill")
    card = _card(ui_engineer, "staging")
    assert "Killed: off for everyone until resumed" in card
    assert (
        card.index("Resume (undo the kill switch)") < card.index("Ramp") if "Ramp" in card else True
    )
    assert ">Kill switch<" not in card


def test_launch__ramp_chosen_and_shown(ui_engineer, ui_marketing, engineer, flag):
    ui_engineer.post(f"{STATE}/production/stage", {"stage": "early_access"})
    for item in ("docs", "announcement", "support_enablement", "sales_briefing"):
        ui_marketing.post(f"/ui/flags/one-click/readiness/{item}", {"done": "true"})
    response = ui_marketing.post(
        f"{STATE}/production/launch", {"launch_at": "2030-01-02 09:00", "rollout_percent": "25"}
    )
    assert response.status_code == 303
    page = html(ui_marketing.get(response.headers["Location"]))
    assert (
        "general rollout starts at 25 %" in page and "2030-01-02 09:00 UTC</time>, at 25 %" in page
    )
    state = engineer.get("/api/v1/flags/one-click/environments/production").json
    assert state["launch_rollout_percent"] == 25
    card = _card(ui_engineer, "production")
    assert "Launch scheduled for" in card and "general rollout starts at 25 %" in card
