"""Typed flag values in a real browser: choosing the type and variations of a new flag,
each cohort's variation, the editor on the flag page and who gets which value; every
page inspected at 1280 and 390 px, light and dark (overflow, axe-core, console)."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest

from tests.ui.browser import Site
from tests.ui.browser import api_post
from tests.ui.browser import new_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, chromium: Any) -> Iterator[Site]:
    """An install with one key result and a cohort of design partners."""
    made = new_site(tmp_path_factory.mktemp("values") / "flagsvc.db")
    admin = made.tokens["admin"]
    objective = api_post(made.url, admin, "/api/v1/objectives",
                         {"title": "A checkout that converts", "period": "2026-Q4", "owner": "payments"})  # fmt: skip
    made.key_result = api_post(made.url, admin, f"/api/v1/objectives/{objective['id']}/key-results",
             {"title": "Checkout conversion", "metric": "conversion", "baseline": 0.31,
              "target": 0.36, "unit": "ratio"})  # fmt: skip
    api_post(made.url, admin, "/api/v1/cohorts", {"key": "partners", "name": "Design partners"})
    yield made
    made.live.stop()


def test_typed_flag__create_choose_cohort_variation_edit_and_see_who_gets_what(people, site):
    engineer = people("engineer", site=site)
    engineer.go("/ui/flags/new")
    page = engineer.page
    rows = page.locator("#flag-variations")
    assert rows.is_hidden()  # boolean, the default: no rows to fill
    page.get_by_role("textbox", name="Key", exact=True).fill("checkout-layout")
    page.get_by_role("textbox", name="Name", exact=True).fill("Checkout layout")
    page.get_by_label("Flow item").select_option("feature")
    page.get_by_label("Serves key result").select_option(label="Checkout conversion")
    page.get_by_label("Value type").select_option("string")
    assert rows.is_visible()
    page.get_by_label("Key 1", exact=True).fill("v2-beta")
    page.get_by_label("Value 1", exact=True).fill("v2-beta")
    page.get_by_label("Description 1", exact=True).fill("Design partners try it")
    page.get_by_label("Key 2", exact=True).fill("v2")
    page.get_by_label("Value 2", exact=True).fill("v2")
    page.get_by_label("Key 3", exact=True).fill("v1")
    page.get_by_label("Value 3", exact=True).fill("v1")
    page.get_by_role("group", name="Variation 2", exact=True).get_by_label("Served on").check()
    page.get_by_role("group", name="Variation 3", exact=True).get_by_label("Served off").check()
    engineer.inspect("values-new-flag")
    page.get_by_role("button", name="Create flag").click()
    page.wait_for_url(re.compile(r".*/ui/flags/checkout-layout$"))
    values = page.locator("#values")
    assert "A string flag" in values.inner_text()
    assert 'flags.get_string("checkout-layout"' in page.inner_text("#code")

    staging = engineer.env("staging")
    staging.get_by_label("Design partners", exact=True).check()
    staging.get_by_label("Variation Design partners gets in Staging").select_option("v2-beta")
    staging.get_by_role("button", name="Save cohorts").click()
    page.get_by_text("Early-access cohorts in staging saved.").wait_for()
    engineer.env("staging").get_by_role("button", name="Start early access in Staging").click()
    page.get_by_text("Now early access in staging.").wait_for()
    audience = page.locator("#audience table").filter(has_text="Staging")
    assert re.search(r"Cohort partners\s+v2-beta", audience.inner_text())
    assert re.search(r"Everyone else\s+v1", audience.inner_text())
    engineer.inspect("values-flag-page")

    page.locator("#values summary").click()
    page.get_by_label("Value 2", exact=True).fill("v2-final")
    engineer.inspect("values-editor")
    page.get_by_role("button", name="Save values").click()
    page.get_by_text("Values saved.").wait_for()
    assert '"v2-final"' in page.locator("#values table").inner_text()


def test_typed_flag__a_refused_value_is_marked_at_its_row(people, site):
    engineer = people("engineer", site=site)
    engineer.go("/ui/flags/new")
    page = engineer.page
    page.get_by_role("textbox", name="Key", exact=True).fill("export-limit")
    page.get_by_role("textbox", name="Name", exact=True).fill("Export limit")
    page.get_by_label("Flow item").select_option("feature")
    page.get_by_label("Serves key result").select_option(label="Checkout conversion")
    page.get_by_label("Value type").select_option("integer")
    page.get_by_label("Key 1", exact=True).fill("fifty")
    page.get_by_label("Value 1", exact=True).fill("fifty")
    page.get_by_role("button", name="Create flag").click()
    page.get_by_text("Must be an integer").wait_for()
    value = page.get_by_label("Value 1", exact=True)
    assert value.get_attribute("aria-invalid") == "true" and value.input_value() == "fifty"
    assert page.locator("#flag-variations").is_visible()
    engineer.inspect("values-refused")


def _api(site: Site, role: str, method: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(site.url + path, data=json.dumps(body).encode(), method=method)
    request.add_header("Authorization", f"Bearer {site.tokens[role]}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10):
        pass


def test_readiness_board__scheduled_launches_listed(people, site):
    """Issue 15: a flag with a launch date no longer vanishes from the board."""
    api_post(site.url, site.tokens["engineer"], "/api/v1/flags",
             {"key": "sso", "name": "SSO (SAML)", "flow_item": "feature",
              "key_result_id": site.key_result["id"]})  # fmt: skip
    flag = "/api/v1/flags/sso"
    _api(
        site, "engineer", "POST", f"{flag}/environments/production/stage", {"stage": "early_access"}
    )
    for item in ("docs", "announcement", "support_enablement", "sales_briefing"):
        _api(site, "marketing", "PUT", f"{flag}/readiness/{item}", {"done": True})
    when = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
    _api(site, "marketing", "PUT", f"{flag}/environments/production/launch",
         {"launch_at": when.isoformat(), "rollout_percent": 25})  # fmt: skip
    marketer = people("marketing", site=site)
    marketer.go("/ui/readiness")
    scheduled = marketer.page.get_by_role("region", name="Scheduled launches", exact=True)
    assert re.search(r"SSO \(SAML\).*Production.*25 % of everyone", scheduled.inner_text(), re.S)
    assert when.strftime("%Y-%m-%d %H:%M") in scheduled.inner_text()
    marketer.inspect("readiness-scheduled")


def test_cohort_rules__add_and_remove_rows_freely(people, site):
    """Issue 15: a new cohort offered two rule rows and no way to add a third."""
    engineer = people("engineer", site=site)
    engineer.go("/ui/cohorts/new")
    page = engineer.page
    page.get_by_role("textbox", name="Key", exact=True).fill("pro-nl")
    page.get_by_role("textbox", name="Name", exact=True).fill("Pro users in NL")
    page.get_by_label("Attribute of rule 1").fill("plan")
    page.get_by_label("Condition of rule 1").select_option("in")
    page.get_by_label("Values of rule 1").fill("pro")
    page.get_by_role("button", name="Add a rule").click()
    page.get_by_role("button", name="Add a rule").click()
    assert page.evaluate("document.activeElement.id") == "cohort-rules-3-attribute"
    page.get_by_role("button", name="Remove rule 2").click()
    page.get_by_label("Attribute of rule 3").fill("country")
    page.get_by_label("Condition of rule 3").select_option("in")
    page.get_by_label("Values of rule 3").fill("NL")
    engineer.inspect("cohort-rules-added")
    page.get_by_role("button", name="Create cohort").click()
    page.wait_for_url(re.compile(r".*/ui/cohorts/pro-nl$"))
    request = urllib.request.Request(site.url + "/api/v1/cohorts/pro-nl")
    request.add_header("Authorization", f"Bearer {site.tokens['engineer']}")
    with urllib.request.urlopen(request, timeout=10) as response:
        rules = json.loads(response.read())["rules"]
    assert [(r["attribute"], r["values"]) for r in rules] == [
        ("plan", ["pro"]),
        ("country", ["NL"]),
    ]
