"""Typed flag values in the UI: the type and variations of a new flag, the variation
editor on the flag page, each cohort's variation, and who gets which value."""

from __future__ import annotations

import re

from tests.ui.conftest import html


def _new(browser, key_result, key="layout", value_type="string", rows=(), on="0", off="", **extra):
    data = {"key": key, "name": key.title(), "flow_item": "feature",
            "key_result_id": str(key_result), "value_type": value_type,
            "on_variation": on, "off_variation": off, **extra}  # fmt: skip
    for n, (vkey, value, description) in enumerate(rows):
        data |= {f"variations-{n}-key": vkey, f"variations-{n}-value": value,
                 f"variations-{n}-description": description}  # fmt: skip
    return browser.post("/ui/flags", data)


LAYOUTS = (("v2-beta", "v2-beta", "design partners"), ("v2", "v2", ""), ("v1", "v1", "today"))


def _etag(caller, path):
    return caller.get(path).headers["ETag"]


def test_new_flag__string_with_variations__created_as_chosen(ui_engineer, engineer, key_result):
    response = _new(ui_engineer, key_result, rows=LAYOUTS, on="1", off="2")
    assert response.status_code == 303, html(response)
    body = engineer.get("/api/v1/flags/layout").json
    assert body["value_type"] == "string"
    assert [(v["key"], v["value"], v["description"]) for v in body["variations"]] == list(LAYOUTS)
    assert (body["on_variation"], body["off_variation"]) == ("v2", "v1")


def test_new_flag__values_read_as_the_type_and_blank_rows_ignored(
    ui_engineer, engineer, key_result
):
    rows = (("fifty", " 50 ", ""), ("", "", ""), ("ten", "10", ""))
    assert (
        _new(ui_engineer, key_result, "limit", "integer", rows, on="0", off="2").status_code == 303
    )
    body = engineer.get("/api/v1/flags/limit").json
    assert [(v["key"], v["value"]) for v in body["variations"]] == [("fifty", 50), ("ten", 10)]
    assert body["off_variation"] == "ten"
    rows = (("checkout", '{"steps": 2, "express": true}', ""),)
    assert _new(ui_engineer, key_result, "cfg", "object", rows).status_code == 303
    body = engineer.get("/api/v1/flags/cfg").json
    assert body["variations"][0]["value"] == {"steps": 2, "express": True}
    assert body["off_variation"] is None


def test_new_flag__value_of_another_type__422_at_its_row_keeping_the_text(ui_engineer, key_result):
    rows = (("fifty", "50", ""), ("lots", "many", ""))
    response = _new(ui_engineer, key_result, "limit", "integer", rows)
    assert response.status_code == 422
    page = html(response)
    assert 'id="flag-variations-1-value-error"' in page and "Must be an integer" in page
    assert 'value="many"' in page and 'value="fifty"' in page


def test_new_flag__bad_json_and_on_a_blank_row__say_why(ui_engineer, key_result):
    response = _new(ui_engineer, key_result, "cfg", "object", (("a", "{nope", ""),), on="2")
    assert response.status_code == 422
    page = html(response)
    assert "This is not valid JSON" in page and 'id="flag-variations-0-value-error"' in page
    assert "Choose a row that has a key." in page


def test_new_flag__boolean_with_rows__refused_with_the_reason(ui_engineer, key_result):
    response = _new(ui_engineer, key_result, "toggle", "boolean", (("x", "1", ""),))
    assert response.status_code == 422
    assert "A boolean flag has the fixed values on (true) and off (false)" in html(response)


def test_new_flag__boolean_by_default__rows_left_empty(ui_engineer, engineer, key_result):
    assert _new(ui_engineer, key_result, "toggle", "boolean").status_code == 303
    assert engineer.get("/api/v1/flags/toggle").json["value_type"] == "boolean"


def test_flag_page__values_and_who_gets_which_in_each_environment(
    ui_engineer, engineer, key_result
):
    _new(ui_engineer, key_result, rows=LAYOUTS, on="1", off="2")
    engineer.post("/api/v1/cohorts", json={"key": "partners", "name": "Design partners"})
    path = "/api/v1/flags/layout/environments/staging"
    engineer.put(f"{path}/cohorts", json={"cohorts": ["partners"], "variations": {"partners": "v2-beta"}},
                 headers={"If-Match": _etag(engineer, path)})  # fmt: skip
    engineer.post(f"{path}/stage", json={"stage": "general", "rollout_percent": 25})
    page = html(ui_engineer.get("/ui/flags/layout"))
    assert "A <strong>string</strong> flag" in page
    staging = page[
        page.index("<caption>Staging") : page.index("</table>", page.index("<caption>Staging"))
    ]
    assert "Cohort partners" in staging and "v2-beta" in staging
    assert "25 % of everyone else, by user key" in staging and "The other 75 %" in staging
    assert "TARGETING_KEY_MISSING" in staging
    development = page[page.index("<caption>Development") :]
    assert re.search(r"Everyone</th><td><code>v1</code> · <code class=\"value\">&quot;v1&quot;|"
                     r"Everyone</th><td><code>v1</code>", development)  # fmt: skip


def test_flag_page__boolean_flag__fixed_values_and_true_false_audience(
    ui_engineer, engineer, key_result
):
    _new(ui_engineer, key_result, "toggle", "boolean")
    engineer.post("/api/v1/flags/toggle/environments/staging/stage", json={"stage": "released"})
    page = html(ui_engineer.get("/ui/flags/toggle"))
    assert "A <strong>boolean</strong> flag" in page and "Edit values" not in page
    staging = page[page.index("<caption>Staging") :]
    assert "STATIC" in staging and "true" in staging


def test_edit_values__saved_audited_and_said_in_words(ui_engineer, engineer, key_result):
    _new(ui_engineer, key_result, rows=LAYOUTS, on="1", off="2")
    version = engineer.get("/api/v1/flags/layout").json["version"]
    form = {"version": str(version), "on_variation": "0", "off_variation": "1",
            "variations-0-key": "v2", "variations-0-value": "v2-final", "variations-1-key": "v1",
            "variations-1-value": "v1", "variations-2-key": "", "variations-2-value": ""}  # fmt: skip
    response = ui_engineer.post("/ui/flags/layout/variations", form)
    assert response.status_code == 303 and response.headers["Location"].endswith("#values")
    body = engineer.get("/api/v1/flags/layout").json
    assert [(v["key"], v["value"]) for v in body["variations"]] == [
        ("v2", "v2-final"),
        ("v1", "v1"),
    ]
    assert (body["on_variation"], body["off_variation"]) == ("v2", "v1")
    page = html(ui_engineer.get("/ui/flags/layout"))
    assert "Values saved." in page
    assert "Values changed: removed v2-beta; changed the value of v2" in page


def test_edit_values__stale_page__412_names_what_changed(ui_engineer, engineer, key_result):
    _new(ui_engineer, key_result, rows=LAYOUTS, on="1", off="2")
    version = engineer.get("/api/v1/flags/layout").json["version"]
    engineer.patch("/api/v1/flags/layout", json={"name": "Renamed"},
                   headers={"If-Match": _etag(engineer, "/api/v1/flags/layout")})  # fmt: skip
    form = {"version": str(version), "on_variation": "0", "off_variation": "",
            "variations-0-key": "v3", "variations-0-value": "v3"}  # fmt: skip
    response = ui_engineer.post("/ui/flags/layout/variations", form)
    assert response.status_code == 412
    page = html(response)
    assert "Not saved: someone changed this since you opened the page" in page
    assert 'value="v3"' in page  # what was typed is kept
    assert engineer.get("/api/v1/flags/layout").json["on_variation"] == "v2"


def test_edit_values__off_value_while_the_gate_holds__409_in_words(
    ui_engineer, engineer, key_result
):
    _new(ui_engineer, key_result, rows=LAYOUTS, on="1", off="2")
    engineer.post(
        "/api/v1/flags/layout/environments/production/stage", json={"stage": "early_access"}
    )
    version = engineer.get("/api/v1/flags/layout").json["version"]
    form = {"version": str(version), "on_variation": "1", "off_variation": "0"}
    for n, (key, value, _d) in enumerate(LAYOUTS):
        form |= {f"variations-{n}-key": key, f"variations-{n}-value": value}
    response = ui_engineer.post("/ui/flags/layout/variations", form)
    assert response.status_code == 409
    page = html(response)
    assert "changing it is a general rollout of that value" in page
    assert engineer.get("/api/v1/flags/layout").json["off_variation"] == "v1"


def test_edit_values__value_of_another_type__422_at_the_row(ui_engineer, engineer, key_result):
    _new(ui_engineer, key_result, "limit", "integer", (("ten", "10", ""),))
    version = engineer.get("/api/v1/flags/limit").json["version"]
    form = {"version": str(version), "on_variation": "0", "off_variation": "",
            "variations-0-key": "ten", "variations-0-value": "10.5"}  # fmt: skip
    response = ui_engineer.post("/ui/flags/limit/variations", form)
    assert response.status_code == 422
    page = html(response)
    assert 'id="values-variations-0-value-error"' in page and "Must be an integer" in page


def test_edit_values__marketing__403(ui_marketing, ui_engineer, key_result):
    _new(ui_engineer, key_result, rows=LAYOUTS, on="1", off="2")
    assert "Edit values" not in html(ui_marketing.get("/ui/flags/layout"))
    response = ui_marketing.post("/ui/flags/layout/variations", {"on_variation": "0"})
    assert response.status_code == 403


def test_cohort_variation__chosen_in_the_environment_card(ui_engineer, engineer, key_result):
    _new(ui_engineer, key_result, rows=LAYOUTS, on="1", off="2")
    engineer.post("/api/v1/cohorts", json={"key": "partners", "name": "Design partners"})
    engineer.post("/api/v1/cohorts", json={"key": "staff", "name": "Staff"})
    page = html(ui_engineer.get("/ui/flags/layout"))
    version = re.search(r'action="/ui/flags/layout/environments/staging/cohorts">\s*'
                        r'<input type="hidden" name="csrf_token" value="[^"]+">'
                        r'<input type="hidden" name="version" value="(\d+)"', page).group(1)  # fmt: skip
    form = {"version": version, "cohorts": ["partners", "staff"], "variation-partners": "v2-beta",
            "variation-staff": ""}  # fmt: skip
    response = ui_engineer.post("/ui/flags/layout/environments/staging/cohorts", form)
    assert response.status_code == 303, html(response)
    state = engineer.get("/api/v1/flags/layout/environments/staging").json
    assert state["cohorts"] == ["partners", "staff"]
    assert state["cohort_variations"] == {"partners": "v2-beta"}
    page = html(ui_engineer.get("/ui/flags/layout"))
    assert '<option value="v2-beta" selected>serves v2-beta</option>' in page
    assert "partners serves v2-beta" in page  # the history in words


def test_cohort_variation__unknown_variation__refused_on_the_card(
    ui_engineer, engineer, key_result
):
    _new(ui_engineer, key_result, rows=LAYOUTS, on="1", off="2")
    engineer.post("/api/v1/cohorts", json={"key": "partners", "name": "Design partners"})
    state = engineer.get("/api/v1/flags/layout/environments/staging").json
    form = {"version": str(state["version"]), "cohorts": ["partners"], "variation-partners": "v9"}
    response = ui_engineer.post("/ui/flags/layout/environments/staging/cohorts", form)
    assert response.status_code == 422
    assert "must be one of the variations" in html(response)
