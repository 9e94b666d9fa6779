"""Readiness: one click per item with a note, launches, the "waiting on us" board, roles."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.ui.conftest import html

ITEMS = ("docs", "announcement", "support_enablement", "sales_briefing")


@pytest.fixture
def flag(ui_engineer, key_result):
    ui_engineer.post("/ui/flags", {"key": "one-click", "name": "One click", "flow_item": "feature",
                                   "key_result_id": str(key_result)})  # fmt: skip
    return "/ui/flags/one-click/readiness"


def test_mark_item__done_with_note__saved_with_who_and_when(ui_marketing, marketing, flag):
    response = ui_marketing.post(
        f"{flag}/docs", {"done": "true", "note": "Published on the help site"}
    )
    assert response.status_code == 303
    item = marketing.get("/api/v1/flags/one-click/readiness").json["items"][0]
    assert item["done"] is True and item["note"] == "Published on the help site"
    assert item["done_by"] == "marketing-token"
    page = html(ui_marketing.get(flag))
    assert "Done by marketing-token" in page and "1 of 4 done" in page


def test_mark_item__every_item__flag_becomes_ready(ui_marketing, marketing, flag):
    for item in ITEMS:
        ui_marketing.post(f"{flag}/{item}", {"done": "true"})
    assert marketing.get("/api/v1/flags/one-click/readiness").json["ready"] is True
    page = html(ui_marketing.get(flag))
    assert "Ready since" in page and "the flag is ready to launch" in page


def test_mark_item__htmx__answers_the_page_with_a_notice(ui_marketing, flag):
    response = ui_marketing.post(f"{flag}/docs", {"done": "true"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    page = html(response)
    assert 'id="readiness-main"' in page and "Item marked done." in page


def test_mark_item__undo(ui_marketing, marketing, flag):
    ui_marketing.post(f"{flag}/docs", {"done": "true"})
    ui_marketing.post(f"{flag}/docs", {"done": "false"})
    assert marketing.get("/api/v1/flags/one-click/readiness").json["items"][0]["done"] is False


def test_mark_item__undo_while_released_in_production__409_says_roll_back_first(
    ui_marketing, marketing, engineer, flag
):
    for item in ITEMS:
        ui_marketing.post(f"{flag}/{item}", {"done": "true"})
    assert engineer.post("/api/v1/flags/one-click/environments/production/stage",
                         json={"stage": "released"}).status_code == 200  # fmt: skip
    response = ui_marketing.post(f"{flag}/docs", {"done": "false"})
    assert response.status_code == 409
    assert "Roll back to early_access there first" in html(response)
    assert marketing.get("/api/v1/flags/one-click/readiness").json["ready"] is True


def test_checklist__missing_items_dropped__pages_say_readiness_was_waived(
    ui_marketing, marketing, flag
):
    ui_marketing.post(f"{flag}/docs", {"done": "true"})
    kept = {"rows": "1", "items-0-key": "docs", "items-0-label": "Docs", "items-0-required": "true"}
    assert ui_marketing.post(flag, kept).status_code == 303
    assert marketing.get("/api/v1/flags/one-click/readiness").json["ready"] is True
    for page in (html(ui_marketing.get(flag)), html(ui_marketing.get("/ui/flags/one-click"))):
        assert "Readiness waived." in page
        assert (
            "Announcement ready, Support team enabled, Sales briefed: waived by marketing-token"
            in page
        )
    history = html(ui_marketing.get("/ui/flags/one-click"))
    assert (
        "Readiness waived: Announcement ready, Support team enabled and Sales briefed taken off "
        "the checklist or made optional, not done" in history
    )
    assert "Ready to launch: 3 required items waived, not done" in history


def test_mark_item__unknown_item__404_on_the_page(ui_marketing, flag):
    response = ui_marketing.post(f"{flag}/nope", {"done": "true"})
    assert response.status_code == 404
    assert "does not exist" in html(response)


def test_mark_item__bad_value__422(ui_marketing, flag):
    response = ui_marketing.post(f"{flag}/docs", {"done": "maybe"})
    assert response.status_code == 422


@pytest.mark.parametrize("role", ["engineer", "viewer"])
def test_mark_item__role_without_mark_readiness__no_buttons_and_403(
    ui, secrets, marketing, flag, role
):
    browser = ui(secrets[role])
    page = html(browser.get(flag))
    assert (
        "Mark done" not in page
        and "Save checklist" not in page
        and "Documentation published" in page
    )
    response = browser.post(f"{flag}/docs", {"done": "true"})
    assert response.status_code == 403
    assert f"Your role ({role}) may not mark readiness" in html(response)
    assert marketing.get("/api/v1/flags/one-click/readiness").json["items"][0]["done"] is False


def test_checklist_editor__rename_add_drop(ui_marketing, marketing, flag):
    ui_marketing.post(f"{flag}/docs", {"done": "true"})
    rows = {"rows": "3", "items-0-key": "docs", "items-0-label": "Docs live", "items-0-required": "yes",
            "items-1-key": "legal", "items-1-label": "Legal review", "items-2-key": "", "items-2-label": ""}  # fmt: skip
    assert ui_marketing.post(flag, rows).status_code == 303
    items = marketing.get("/api/v1/flags/one-click/readiness").json["items"]
    assert [(i["key"], i["label"], i["required"], i["done"]) for i in items] == [
        ("docs", "Docs live", True, True), ("legal", "Legal review", False, False)]  # fmt: skip


def test_checklist_editor__bad_key__422_keeps_rows(ui_marketing, flag):
    rows = {"rows": "1", "items-0-key": "Bad Key", "items-0-label": "Kept label"}
    response = ui_marketing.post(flag, rows)
    assert response.status_code == 422
    page = html(response)
    assert 'value="Kept label"' in page and 'id="checklist-items-0-key-error"' in page


def _ready_in_early_access(ui_engineer, ui_marketing, flag):
    ui_engineer.post("/ui/flags/one-click/environments/production/stage", {"stage": "early_access"})
    for item in ITEMS:
        ui_marketing.post(f"{flag}/{item}", {"done": "true"})


def test_launch__ready_in_early_access__scheduled_in_utc(
    ui_engineer, ui_marketing, marketing, clock, flag
):
    _ready_in_early_access(ui_engineer, ui_marketing, flag)
    when = (clock() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = ui_marketing.post(
        "/ui/flags/one-click/environments/production/launch", {"launch_at": when}
    )
    assert response.status_code == 303
    state = marketing.get("/api/v1/flags/one-click/environments/production").json
    assert state["launch_at"].startswith(when)
    assert "Launch in production scheduled" in html(ui_marketing.get(flag))
    assert (
        ui_marketing.post("/ui/flags/one-click/environments/production/launch/cancel").status_code
        == 303
    )
    assert (
        marketing.get("/api/v1/flags/one-click/environments/production").json["launch_at"] is None
    )


def test_board__scheduled_launch_listed_soonest_first_not_lost(
    ui_engineer, ui_marketing, clock, flag
):
    assert "No launch is scheduled" in html(ui_marketing.get("/ui/readiness"))
    _ready_in_early_access(ui_engineer, ui_marketing, flag)
    when = (clock() + timedelta(days=2)).replace(second=0, microsecond=0)
    form = {"launch_at": when.strftime("%Y-%m-%dT%H:%M"), "rollout_percent": "25"}
    ui_marketing.post("/ui/flags/one-click/environments/production/launch", form)
    page = html(ui_marketing.get("/ui/readiness"))
    scheduled = page.split("Scheduled launches", 1)[1]
    assert "One click" in scheduled and "Production" in scheduled
    assert when.strftime("%Y-%m-%d %H:%M") in scheduled and "25 % of everyone" in scheduled
    assert "One click" not in page.split("Ready to launch")[1].split("Scheduled launches")[0]


def test_launch__not_ready__409_in_words(ui_engineer, ui_marketing, clock, flag):
    ui_engineer.post("/ui/flags/one-click/environments/production/stage", {"stage": "early_access"})
    when = (clock() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = ui_marketing.post(
        "/ui/flags/one-click/environments/production/launch", {"launch_at": when}
    )
    assert response.status_code == 409
    assert "not ready to launch" in html(response)


def test_launch__in_the_past__422_keeps_the_time(ui_engineer, ui_marketing, clock, flag):
    _ready_in_early_access(ui_engineer, ui_marketing, flag)
    when = (clock() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = ui_marketing.post(
        "/ui/flags/one-click/environments/production/launch", {"launch_at": when}
    )
    assert response.status_code == 422
    page = html(response)
    assert "That time is already past: it is now" in page and f'value="{when}"' in page
    assert "must be in the future" not in page


def test_launch__engineer__403(ui_engineer, clock, flag):
    response = ui_engineer.post(
        "/ui/flags/one-click/environments/production/launch", {"launch_at": "2030-01-01T00:00"}
    )
    assert response.status_code == 403


def test_board__waiting_on_us_lists_finished_features_held_for_readiness(
    ui_engineer, ui_marketing, flag
):
    assert "Nothing is waiting on readiness" in html(ui_marketing.get("/ui/readiness"))
    ui_engineer.post("/ui/flags/one-click/environments/staging/stage", {"stage": "early_access"})
    page = html(ui_marketing.get("/ui/readiness"))
    assert "/ui/flags/one-click" in page and "Staging" in page and "Work on it" in page
    assert "Documentation published" in page
    for item in ITEMS:
        ui_marketing.post(f"{flag}/{item}", {"done": "true"})
    page = html(ui_marketing.get("/ui/readiness"))
    assert "Nothing is waiting on readiness" in page
    assert "No ready flag is waiting for a launch date" in page  # staging is not gated
    ui_engineer.post("/ui/flags/one-click/environments/production/stage", {"stage": "early_access"})
    assert "One click" in html(ui_marketing.get("/ui/readiness")).split("Ready to launch")[1]


def test_checklist_editor__new_row_by_label_only__key_made_from_it(ui_marketing, marketing, flag):
    page = html(ui_marketing.get(flag))
    assert 'name="items-0-key" value="docs"' in page and ">Key<" not in page
    rows = {"rows": "2", "items-0-key": "docs", "items-0-label": "Docs live",
            "items-0-required": "yes", "items-1-key": "", "items-1-label": "Press kit sent!",
            "items-1-required": "yes"}  # fmt: skip
    assert ui_marketing.post(flag, rows).status_code == 303
    items = marketing.get("/api/v1/flags/one-click/readiness").json["items"]
    assert [(i["key"], i["label"]) for i in items] == [
        ("docs", "Docs live"),
        ("press_kit_sent", "Press kit sent!"),
    ]
