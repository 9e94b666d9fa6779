"""First run: the getting-started guide, empty states with a next step, a key result made
with the first flag."""

from __future__ import annotations

from tests.ui.conftest import html


def test_flag_list__empty_install__guide_names_the_first_step(ui_engineer):
    page = html(ui_engineer.get("/ui/flags"))
    assert "No flags yet" in page and "Say what the work is for" in page
    assert 'href="/ui/okrs">Create an objective and key result</a>' in page


def test_flag_list__empty_install_as_viewer__says_who_takes_the_step(ui_viewer):
    page = html(ui_viewer.get("/ui/flags"))
    assert "Next: the engineer or admin takes this step." in page
    assert "Create an objective and key result</a>" not in page


def test_start__after_a_flag__first_two_steps_ticked_cohort_next(ui_engineer, key_result):
    ui_engineer.post("/ui/flags", {"key": "f1", "name": "F1", "flow_item": "feature",
                                   "key_result_id": str(key_result)})  # fmt: skip
    page = html(ui_engineer.get("/ui/start"))
    assert page.count('class="step is-done"') == 3  # key result, flag, SDK key (the fixtures')
    assert 'href="/ui/cohorts/new">New cohort</a>' in page


def test_flag_filters__nothing_matches__no_guide_but_a_way_back(ui_engineer, key_result):
    page = html(ui_engineer.get("/ui/flags?q=nothing-like-this"))
    assert "No flags match these filters" in page and "No flags yet" not in page


def test_flag_form__no_key_result_yet__objective_and_key_result_made_with_the_flag(
    ui_engineer, engineer
):
    form = html(ui_engineer.get("/ui/flags/new"))
    assert '<option value="new" selected>' in form and "describe the first one below" in form
    response = ui_engineer.post("/ui/flags", {
        "key": "first", "name": "First", "flow_item": "feature", "key_result_id": "new",
        "new-objective_title": "Faster checkout", "new-objective_period": "2026-Q4",
        "new-objective_owner": "payments", "new-kr_title": "Checkout conversion",
        "new-kr_metric": "conversion rate", "new-kr_baseline": "31", "new-kr_target": "36",
        "new-kr_unit": "%",
    })  # fmt: skip
    assert response.status_code == 303
    flag = engineer.get("/api/v1/flags/first").json
    key_result = engineer.get(f"/api/v1/key-results/{flag['key_result_id']}").json
    assert key_result["title"] == "Checkout conversion" and key_result["current"] == 31
    objectives = engineer.get("/api/v1/objectives").json["items"]
    assert [o["title"] for o in objectives] == ["Faster checkout"]


def test_flag_form__new_key_result_with_errors__all_reasons_at_once_nothing_created(
    ui_engineer, engineer, key_result
):
    response = ui_engineer.post("/ui/flags", {
        "key": "Bad Key", "name": "Kept", "flow_item": "feature", "key_result_id": "new",
        "new-objective_id": "", "new-objective_title": "Kept objective",
        "new-objective_period": "next quarter", "new-kr_title": "KR", "new-kr_baseline": "x",
    })  # fmt: skip
    assert response.status_code == 422
    page = html(response)
    for field in ("key", "new-objective_period", "new-objective_owner", "new-kr_metric",
                  "new-kr_baseline", "new-kr_target"):  # fmt: skip
        assert f'id="flag-{field}-error"' in page, field
    assert 'value="Kept objective"' in page and '<details class="subform" open>' in page
    assert len(engineer.get("/api/v1/objectives").json["items"]) == 1  # only the fixture's


def test_flag_form__new_key_result_under_an_existing_objective(ui_engineer, engineer, key_result):
    objective = engineer.get(f"/api/v1/key-results/{key_result}").json["objective_id"]
    response = ui_engineer.post("/ui/flags", {
        "key": "second", "name": "Second", "flow_item": "feature", "key_result_id": "new",
        "new-objective_id": str(objective), "new-kr_title": "Repeat purchases",
        "new-kr_metric": "share", "new-kr_baseline": "0.2", "new-kr_target": "0.3",
    })  # fmt: skip
    assert response.status_code == 303
    found = engineer.get(f"/api/v1/objectives/{objective}").json["key_results"]
    assert [kr["title"] for kr in found] == ["Checkout conversion", "Repeat purchases"]


def test_empty_states__cohorts_readiness_okrs__each_names_its_next_step(ui_engineer, ui_marketing):
    assert "Create the first cohort" in html(ui_engineer.get("/ui/cohorts"))
    assert "gated environment" in html(ui_marketing.get("/ui/readiness"))
    okrs = html(ui_engineer.get("/ui/okrs"))
    assert '<details class="card" open>' in okrs and "Create objective" in okrs
