"""Flag list (search, filters, stage per environment), new flag, flag page, edit."""

from __future__ import annotations

import re

import pytest

from tests.ui.conftest import html


def _flag(browser, key_result, key="one-click", **extra):
    data = {"key": key, "name": key.replace("-", " ").title(), "flow_item": "feature",
            "key_result_id": str(key_result), **extra}  # fmt: skip
    return browser.post("/ui/flags", data)


def test_flag_create__valid__dark_everywhere_and_shown(ui_engineer, engineer, key_result):
    response = _flag(ui_engineer, key_result, description="Buy in one click")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/ui/flags/one-click")
    body = engineer.get("/api/v1/flags/one-click").json
    assert body["value_type"] == "boolean"
    assert {env["stage"] for env in body["environments"].values()} == {"off"}
    page = html(ui_engineer.get("/ui/flags/one-click"))
    assert "Buy in one click" in page and "Checkout conversion" in page
    assert "Flag one-click created" in page


def test_flag_create__invalid__422_keeps_values_and_says_why_per_field(ui_engineer, key_result):
    response = ui_engineer.post(
        "/ui/flags",
        {"key": "Bad Key!", "name": "Kept name", "flow_item": "feature", "key_result_id": str(key_result),
         "description": "kept description"},
    )  # fmt: skip
    assert response.status_code == 422
    page = html(response)
    assert 'value="Bad Key!"' in page and 'value="Kept name"' in page
    assert "kept description" in page
    assert 'id="flag-key-error"' in page and "Use 1-100 lowercase letters" in page
    assert 'aria-invalid="true"' in page


def test_flag_create__missing_fields__plain_words(ui_engineer):
    page = html(ui_engineer.post("/ui/flags", {"key": "k"}))
    assert "This is required." in page
    assert "Missing data for required field" not in page


def test_flag_create__taken_key__409_next_to_the_key(ui_engineer, key_result):
    _flag(ui_engineer, key_result)
    response = _flag(ui_engineer, key_result, name="Another")
    assert response.status_code == 409
    page = html(response)
    assert "already exists" in page and 'id="flag-key-error"' in page and 'value="Another"' in page


def test_flag_create__unknown_key_result__422_at_the_field(ui_engineer):
    response = _flag(ui_engineer, 9999)
    assert response.status_code == 422
    assert "key result 9999 does not exist" in html(response)


@pytest.mark.parametrize("role", ["marketing", "viewer"])
def test_flag_create__role_without_edit_flags__no_button_and_403(ui, secrets, key_result, role):
    browser = ui(secrets[role])
    assert "New flag" not in html(browser.get("/ui/flags"))
    assert browser.get("/ui/flags/new").status_code == 403
    response = _flag(browser, key_result)
    assert response.status_code == 403
    assert f"Your role ({role}) may not edit flags" in html(response)


def test_flag_list__stage_per_environment_and_filters(ui_engineer, engineer, key_result):
    _flag(ui_engineer, key_result, key="alpha")
    _flag(ui_engineer, key_result, key="beta-search", flow_item="defect")
    engineer.post("/api/v1/flags/alpha/environments/staging/stage", json={"stage": "early_access"})
    page = html(ui_engineer.get("/ui/flags"))
    assert "alpha" in page and "beta-search" in page and "stage-early_access" in page
    assert "Production" in page and "gated" in page
    filtered = html(ui_engineer.get("/ui/flags?stage=early_access&environment=staging"))
    assert "/ui/flags/alpha" in filtered and "/ui/flags/beta-search" not in filtered
    assert "/ui/flags/alpha" not in html(
        ui_engineer.get("/ui/flags?stage=early_access&environment=production")
    )
    searched = html(ui_engineer.get("/ui/flags?q=SEARCH"))
    assert "/ui/flags/beta-search" in searched and "/ui/flags/alpha" not in searched
    kinds = html(ui_engineer.get("/ui/flags?flow_item=defect"))
    assert "/ui/flags/beta-search" in kinds and "/ui/flags/alpha" not in kinds


def test_flag_list__objective_filter(ui_engineer, engineer, key_result):
    _flag(ui_engineer, key_result, key="served")
    other = engineer.post(
        "/api/v1/objectives", json={"title": "Other", "period": "2026", "owner": "o"}
    ).json
    page = html(ui_engineer.get(f"/ui/flags?objective_id={other['id']}"))
    assert "/ui/flags/served" not in page and "No flags match" in page


def test_flag_list__environment_without_stage__422_in_words(ui_viewer):
    response = ui_viewer.get("/ui/flags?environment=production")
    assert response.status_code == 422
    assert "Choose a stage too" in html(response)


def test_flag_list__unknown_environment__422(ui_viewer):
    response = ui_viewer.get("/ui/flags?stage=off&environment=nowhere")
    assert response.status_code == 422
    assert "does not exist" in html(response)


def test_flag_list__pages_both_ways(ui_engineer, key_result):
    for n in range(52):
        _flag(ui_engineer, key_result, key=f"flag-{n:02d}")
    first = html(ui_engineer.get("/ui/flags"))
    assert "/ui/flags/flag-49" in first and "/ui/flags/flag-50" not in first
    assert (
        "50 of 52 flags shown" in first and "Page 1 of 2" in first and "Previous page" not in first
    )
    second = html(ui_engineer.get("/ui/flags?page=2"))
    assert "/ui/flags/flag-51" in second and "/ui/flags/flag-00" not in second
    assert "Previous page" in second and "Next page" not in second


def test_flag_list__sorts_by_name_newest_and_key(ui_engineer, key_result):
    for key, name in (("b-flag", "Zebra crossing"), ("a-flag", "apple pay"), ("c-flag", "Mango")):
        _flag(ui_engineer, key_result, key=key, name=name)

    def order(sort: str) -> list[str]:
        page = html(ui_engineer.get(f"/ui/flags?sort={sort}"))
        return sorted(("a-flag", "b-flag", "c-flag"), key=lambda k: page.index(f'/ui/flags/{k}"'))

    assert order("name") == ["a-flag", "c-flag", "b-flag"]  # case does not matter
    assert order("newest") == ["c-flag", "a-flag", "b-flag"]
    assert order("key") == ["a-flag", "b-flag", "c-flag"]
    assert order("nonsense") == ["b-flag", "a-flag", "c-flag"]  # the default: oldest first


def test_flag_list__sort_and_filters_travel_with_the_pages(ui_engineer, key_result):
    for n in range(51):
        _flag(ui_engineer, key_result, key=f"flag-{n:02d}")
    page = html(ui_engineer.get("/ui/flags?sort=newest&q=flag"))
    link = re.search(r'href="([^"]+)">Next page', page)
    assert link and {"sort=newest", "q=flag", "page=2"} <= set(
        link.group(1).split("?")[1].split("&")
    )


@pytest.mark.parametrize("page", ["0", "-1", "x", "²", "9" * 30])
def test_flag_list__forged_page__422_saying_so(ui_viewer, page):
    response = ui_viewer.get(f"/ui/flags?page={page}")
    assert response.status_code == 422
    assert "pages are numbered from 1" in html(response)


def test_flag_list__page_past_the_end__the_last_page(ui_engineer, key_result):
    _flag(ui_engineer, key_result, key="only-one")
    response = ui_engineer.get("/ui/flags?page=7")
    assert response.status_code == 200 and "/ui/flags/only-one" in html(response)


def test_flag_page__unknown_flag__404_page(ui_viewer):
    response = ui_viewer.get("/ui/flags/nope")
    assert response.status_code == 404
    assert "flag 'nope' does not exist" in html(response)


def test_flag_edit__saves_and_audits(ui_engineer, engineer, key_result):
    _flag(ui_engineer, key_result)
    form = html(ui_engineer.get("/ui/flags/one-click/edit"))
    assert 'name="version" value="1"' in form
    response = ui_engineer.post(
        "/ui/flags/one-click/edit",
        {
            "version": "1",
            "name": "Renamed",
            "flow_item": "risk",
            "key_result_id": str(key_result),
        },
    )
    assert response.status_code == 303
    body = engineer.get("/api/v1/flags/one-click").json
    assert body["name"] == "Renamed" and body["flow_item"] == "risk"


def test_flag_edit__someone_else_saved_first__412_keeps_my_values(
    ui_engineer, engineer, key_result
):
    _flag(ui_engineer, key_result)
    seen = re.search(
        r'name="seen" value="(\d+)"', html(ui_engineer.get("/ui/flags/one-click/edit"))
    )
    etag = engineer.get("/api/v1/flags/one-click").headers["ETag"]
    engineer.patch("/api/v1/flags/one-click", json={"name": "Theirs"}, headers={"If-Match": etag})
    response = ui_engineer.post(
        "/ui/flags/one-click/edit",
        {"version": "1", "seen": seen.group(1), "name": "Mine", "flow_item": "feature",
         "key_result_id": str(key_result)},
    )  # fmt: skip
    assert response.status_code == 412
    page = html(response)
    assert "Not saved: someone changed this since you opened the page" in page
    assert "engineer-token" in page and "Changed the flag's name" in page  # who and what
    assert 'value="Mine"' in page and "Please fix the marked field" not in page
    assert engineer.get("/api/v1/flags/one-click").json["name"] == "Theirs"


def test_flag_page__viewer_sees_everything_but_no_controls(ui, secrets, ui_engineer, key_result):
    _flag(ui_engineer, key_result)
    page = html(ui(secrets["viewer"]).get("/ui/flags/one-click"))
    assert "Checkout conversion" in page and "Launch readiness" in page and "Production" in page
    for control in (
        "Kill switch",
        "Start early access",
        "Edit flag",
        "Save cohorts",
        "Save exclusions",
    ):
        assert control not in page


def test_flag_form__new_objective_period__a_picker_on_this_quarter(ui_engineer):
    page = html(ui_engineer.get("/ui/flags/new"))
    picker = re.search(r'<select[^>]*name="new-objective_period"[^>]*>(.*?)</select>', page, re.S)
    assert picker is not None  # not free text whose placeholder looks filled in
    assert re.search(r'<option value="\d{4}-Q\d" selected>', picker.group(1))
