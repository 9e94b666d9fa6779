"""Cohort editor: rules as rows, members pasted or uploaded, the live preview, roles."""

from __future__ import annotations

import io

import pytest

from tests.ui.conftest import html

RULE = {"rule_rows": "3", "rules-0-attribute": "plan", "rules-0-op": "in", "rules-0-values": "beta\npro",
        "rules-1-attribute": "age", "rules-1-op": "gte", "rules-1-values": "18"}  # fmt: skip


def _create(browser, **extra):
    return browser.post("/ui/cohorts", {"key": "early", "name": "Early adopters", **RULE, **extra})


def test_cohort_create__rules_and_pasted_members__saved_typed(ui_engineer, engineer):
    response = _create(ui_engineer, members="vip-1\nvip-2\nvip-1\n", opt_in="yes")
    assert response.status_code == 303
    body = engineer.get("/api/v1/cohorts/early").json
    assert body["rules"] == [
        {"attribute": "plan", "op": "in", "values": ["beta", "pro"]},
        {"attribute": "age", "op": "gte", "values": [18]},
    ]
    assert body["member_count"] == 2 and body["opt_in"] is True
    page = html(ui_engineer.get("/ui/cohorts/early"))
    assert "vip-1" in page and "Size" in page and "No flag uses this cohort yet" in page


def test_cohort_create__csv_upload__first_column_without_header(ui_engineer, engineer):
    csv_file = (io.BytesIO(b"user_key,email\nu-1,a@x\nu-2,b@x\n"), "members.csv")
    response = ui_engineer.post(
        "/ui/cohorts",
        {"key": "csv", "name": "From CSV", "rule_rows": "0", "members_file": csv_file},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    members = engineer.get("/api/v1/cohorts/csv/members").json["items"]
    assert [m["user_key"] for m in members] == ["u-1", "u-2"]


def test_cohort_create__bad_rule__422_keeps_every_row_and_says_why(ui_engineer):
    response = ui_engineer.post(
        "/ui/cohorts",
        {"key": "bad", "name": "Kept", "rule_rows": "2", "rules-0-attribute": "version",
         "rules-0-op": "semver_gte", "rules-0-values": "not-a-version", "members": "keep-me"},
    )  # fmt: skip
    assert response.status_code == 422
    page = html(response)
    assert 'value="version"' in page and "not-a-version" in page and "keep-me" in page
    assert 'id="cohort-rules-0-values-error"' in page
    assert '<option value="semver_gte" selected>' in page


def test_cohort_create__taken_key__409(ui_engineer):
    _create(ui_engineer)
    response = _create(ui_engineer)
    assert response.status_code == 409
    assert "already exists" in html(response)


def test_cohort_edit__rules_round_trip_keeps_types(ui_engineer, engineer):
    engineer.post("/api/v1/cohorts", json={"key": "typed", "name": "Typed", "rules": [
        {"attribute": "id", "op": "in", "values": ["42", 7, True]}]})  # fmt: skip
    page = html(ui_engineer.get("/ui/cohorts/typed"))
    assert '"42"\n7\ntrue' in page
    form = {"version": "1", "name": "Typed", "rule_rows": "1", "rules-0-attribute": "id",
            "rules-0-op": "in", "rules-0-values": '"42"\n7\ntrue'}  # fmt: skip
    assert ui_engineer.post("/ui/cohorts/typed", form).status_code == 303
    assert engineer.get("/api/v1/cohorts/typed").json["rules"][0]["values"] == ["42", 7, True]


def test_cohort_edit__stale_version__412_keeps_my_rules(ui_engineer, engineer):
    _create(ui_engineer)
    etag = engineer.get("/api/v1/cohorts/early").headers["ETag"]
    engineer.patch("/api/v1/cohorts/early", json={"name": "Theirs"}, headers={"If-Match": etag})
    response = ui_engineer.post("/ui/cohorts/early", {"version": "1", "name": "Mine", **RULE})
    assert response.status_code == 412
    assert 'value="Mine"' in html(response)


def test_members__add_then_remove_in_bulk(ui_engineer, engineer):
    _create(ui_engineer)
    response = ui_engineer.post("/ui/cohorts/early/members", {"members": "a\nb\nc", "mode": "add"})
    assert response.status_code == 303
    page = html(ui_engineer.get("/ui/cohorts/early"))
    assert "3 added; the cohort now has 3 members." in page
    ui_engineer.post("/ui/cohorts/early/members", {"members": "a", "mode": "remove"})
    assert engineer.get("/api/v1/cohorts/early").json["member_count"] == 2


def test_members__nothing_sent__422_in_words(ui_engineer):
    _create(ui_engineer)
    response = ui_engineer.post("/ui/cohorts/early/members", {"members": " \n", "mode": "add"})
    assert response.status_code == 422
    assert "Paste or upload at least one user key" in html(response)


def test_members__not_utf8_file__422(ui_engineer):
    _create(ui_engineer)
    upload = (io.BytesIO(b"\xff\xfe\x00bad"), "m.csv")
    response = ui_engineer.post("/ui/cohorts/early/members", {"members_file": upload},
                                content_type="multipart/form-data")  # fmt: skip
    assert response.status_code == 422
    assert "must be UTF-8" in html(response)


@pytest.mark.parametrize("app_config", [{"max_members_per_request": 3}])
def test_members__more_than_the_limit__413_page_names_the_limit(ui_engineer, engineer):
    _create(ui_engineer)
    upload = (io.BytesIO(b"u-1\nu-2\nu-3\nu-4\n"), "m.csv")
    response = ui_engineer.post("/ui/cohorts/early/members", {"members_file": upload, "mode": "add"},
                                content_type="multipart/form-data")  # fmt: skip
    assert response.status_code == 413
    assert "at most 3 user keys per request (got 4)" in html(response)
    assert engineer.get("/api/v1/cohorts/early").json["member_count"] == 0


@pytest.mark.parametrize("app_config", [{"max_body_bytes": 4096}])
def test_members__upload_over_the_body_limit__413_page_not_json(ui_engineer):
    _create(ui_engineer)
    upload = (io.BytesIO(b"user-key\n" * 1000), "big.csv")
    response = ui_engineer.post("/ui/cohorts/early/members", {"members_file": upload, "mode": "add"},
                                content_type="multipart/form-data")  # fmt: skip
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert "larger than the 4 KiB a form or upload may be" in html(response)


@pytest.mark.parametrize("role", ["marketing", "viewer"])
def test_cohort_editing__roles_without_edit_cohorts__read_only_and_403(
    ui, ui_engineer, secrets, role
):
    _create(ui_engineer)
    browser = ui(secrets[role])
    page = html(browser.get("/ui/cohorts/early"))
    assert "Save cohort" not in page and "Import" not in page and "New cohort" not in page
    assert "Would this user be in?" in page  # the preview reads only
    assert browser.get("/ui/cohorts/new").status_code == 403
    assert browser.post("/ui/cohorts/early", {"version": "1", "name": "x"}).status_code == 403
    assert browser.post("/ui/cohorts/early/members", {"members": "x"}).status_code == 403
    assert _create(browser, key="other").status_code == 403


def test_preview__htmx__fragment_says_in_with_each_rule(ui_engineer):
    data = {**RULE, "preview_key": "u-1", "preview_attributes": "plan = beta\nage = 30"}
    response = ui_engineer.post("/ui/cohorts/preview", data, headers={"HX-Request": "true"})
    assert response.status_code == 200
    page = html(response)
    assert "<html" not in page
    assert "would be in the cohort" in page.replace("<strong>", "").replace("</strong>", "")
    assert "plan is one of beta, pro" in page and "age is at least 18" in page


def test_preview__rule_fails__says_which(ui_engineer):
    data = {**RULE, "preview_key": "u-1", "preview_attributes": "plan = beta\nage = 12"}
    page = html(ui_engineer.post("/ui/cohorts/preview", data, headers={"HX-Request": "true"}))
    assert "would not be in the cohort" in page.replace("<strong>", "").replace("</strong>", "")
    assert "1 of 2 rules do not match" in page and 'class="fail"' in page


def test_preview__saved_member_with_no_matching_attributes__in(ui_engineer):
    _create(ui_engineer, members="vip-1")
    data = {**RULE, "cohort_key": "early", "preview_key": "vip-1"}
    page = html(ui_engineer.post("/ui/cohorts/preview", data, headers={"HX-Request": "true"}))
    assert "explicit member" in page


def test_preview__without_javascript__whole_page_keeps_the_form(ui_engineer):
    data = {
        "key": "draft",
        "name": "Draft",
        **RULE,
        "preview_key": "u-2",
        "preview_attributes": "plan = pro\nage = 40",
    }
    response = ui_engineer.post("/ui/cohorts/preview", data)
    page = html(response)
    assert response.status_code == 200 and "<html" in page
    assert 'value="draft"' in page and 'value="u-2"' in page and "would be in the cohort" in page.replace(
        "<strong>", "").replace("</strong>", "")  # fmt: skip


def test_preview__bad_attributes__says_how_to_write_them(ui_engineer):
    data = {**RULE, "preview_key": "u", "preview_attributes": "just words"}
    response = ui_engineer.post("/ui/cohorts/preview", data, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert "name = value" in html(response)


def test_cohort_list__size_and_usage(ui_engineer, engineer, key_result):
    _create(ui_engineer, members="a\nb")
    ui_engineer.post(
        "/ui/flags",
        {"key": "f", "name": "F", "flow_item": "feature", "key_result_id": str(key_result)},
    )
    version = engineer.get("/api/v1/flags/f/environments/production").json["version"]
    engineer.put("/api/v1/flags/f/environments/production/cohorts", json={"cohorts": ["early"]},
                 headers={"If-Match": engineer.get("/api/v1/flags/f/environments/production").headers["ETag"]})  # fmt: skip
    assert version >= 1
    page = html(ui_engineer.get("/ui/cohorts"))
    assert "Early adopters" in page and "2 rules" in page and "(production)" in page


def test_catch_all_cohort__page_and_list_say_so(ui_engineer, engineer):
    rules = [{"attribute": "plan", "op": "neq", "values": ["free"]}]
    engineer.post("/api/v1/cohorts", json={"key": "paying", "name": "Paying", "rules": rules})
    engineer.post("/api/v1/cohorts", json={"key": "vip", "name": "VIP"})
    page = html(ui_engineer.get("/ui/cohorts/paying"))
    assert "Catch-all." in page and "excludes only the values it lists" in page
    assert "Catch-all." not in html(ui_engineer.get("/ui/cohorts/vip"))
    assert html(ui_engineer.get("/ui/cohorts")).count('class="catch-all"') == 1


# --- rule errors at the row typed, in words; members searched and paged (issue 15 item 7)


def test_cohort_create__bad_rule_after_a_blank_row__error_on_that_row(ui_engineer):
    response = ui_engineer.post(
        "/ui/cohorts",
        {"key": "gap", "name": "Gap", "rule_rows": "3",
         "rules-0-attribute": "plan", "rules-0-op": "eq", "rules-0-values": "pro",
         "rules-1-attribute": "", "rules-1-op": "eq", "rules-1-values": "",
         "rules-2-attribute": "version", "rules-2-op": "semver_gte", "rules-2-values": "1.0.0\n1.x"},
    )  # fmt: skip
    assert response.status_code == 422
    page = html(response)
    assert 'id="cohort-rules-2-values-error"' in page
    assert 'id="cohort-rules-1-values-error"' not in page
    assert "Line 2 (“1.x”) is not a version like 1.4.0." in page
    assert "Values[" not in page and "values[" not in page


@pytest.mark.parametrize(
    ("op", "typed", "said"),
    [
        ("matches", "([a-z]", "Line 1 (“([a-z]”) is not a valid pattern"),
        ("matches", "(a+)+$", "Line 1 (“(a+)+$”) could take too long to match"),
        ("gt", "ten", "Line 1 (“ten”) is not a number."),
        ("before", "next tuesday", "Line 1 (“next tuesday”) is not a date and time"),
    ],
)
def test_cohort_edit__rule_errors_in_plain_words(ui_engineer, engineer, op, typed, said):
    engineer.post("/api/v1/cohorts", json={"key": "words", "name": "Words", "rules": []})
    ui_engineer.get("/ui/cohorts/words")
    response = ui_engineer.post(
        "/ui/cohorts/words",
        {"name": "Words", "version": "1", "rule_rows": "2", "rules-0-attribute": "",
         "rules-0-op": "eq", "rules-0-values": "", "rules-1-attribute": "plan",
         "rules-1-op": op, "rules-1-values": typed},
    )  # fmt: skip
    assert response.status_code == 422
    page = html(response)
    assert said in page and 'id="cohort-rules-1-values-error"' in page


def test_cohort_create__rule_without_values__asks_for_one(ui_engineer):
    response = ui_engineer.post(
        "/ui/cohorts",
        {"key": "novalues", "name": "No values", "rule_rows": "1",
         "rules-0-attribute": "plan", "rules-0-op": "eq", "rules-0-values": ""},
    )  # fmt: skip
    assert response.status_code == 422
    assert "values, one per line." in html(response)


@pytest.fixture
def crowd(engineer):
    keys = [f"user-{n:03d}" for n in range(250)] + ["vip-anna", "vip-bo"]
    engineer.post("/api/v1/cohorts", json={"key": "crowd", "name": "Crowd", "rules": []})
    engineer.post("/api/v1/cohorts/crowd/members", json={"add": keys})
    return keys


def test_cohort_members__paged_both_ways(ui_viewer, crowd):
    first = html(ui_viewer.get("/ui/cohorts/crowd"))
    assert "252 explicit members, 1–100 shown" in first and "Page 1 of 3" in first
    assert "user-099" in first and "user-100" not in first and "← Previous" not in first
    last = html(ui_viewer.get("/ui/cohorts/crowd?member_page=3"))
    assert "201–252 shown" in last and "vip-bo" in last and "user-199" not in last
    assert "member_page=2" in last and "Next →" not in last


def test_cohort_members__search_finds_and_pages_within(ui_viewer, crowd):
    page = html(ui_viewer.get("/ui/cohorts/crowd?member_q=vip"))
    assert "2 members with “vip” in the key" in page
    assert "vip-anna" in page and "user-000" not in page and "Page 1 of" not in page
    none = html(ui_viewer.get("/ui/cohorts/crowd?member_q=nobody"))
    assert "No member has “nobody” in their user key." in none


@pytest.mark.parametrize("asked", ["0", "99", "x", "9" * 40])
def test_cohort_members__odd_page_numbers__nearest_page(ui_viewer, crowd, asked):
    response = ui_viewer.get(f"/ui/cohorts/crowd?member_page={asked}")
    assert response.status_code == 200


def test_cohort_members__search_with_wildcards_and_nul__literal(ui_viewer, crowd):
    assert "No member has" in html(ui_viewer.get("/ui/cohorts/crowd?member_q=user_%25"))
    assert ui_viewer.get("/ui/cohorts/crowd?member_q=a%00b").status_code == 200
