"""The admin UI as a product, in a real browser: each page at 1280 and 390 px, light and dark.

Every page these tests reach is inspected (``Person.inspect``): no horizontal overflow at
390 px, no serious or critical axe-core violation, no console error (a CSP refusal is
one), and a screenshot of each variant in ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.browser import Site
from tests.ui.browser import api_post
from tests.ui.browser import new_site


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, chromium: Any) -> Iterator[Site]:
    """An install nobody has used yet (only ``flagsvc init``)."""
    site = new_site(tmp_path_factory.mktemp("fresh") / "flagsvc.db")
    yield site
    site.live.stop()


@pytest.fixture(scope="module")
def one_flag(tmp_path_factory: pytest.TempPathFactory, chromium: Any) -> Iterator[Site]:
    """An install holding one flag made through the API, for tests that must not depend
    on another test having made it (xdist may run them on another worker)."""
    site = new_site(tmp_path_factory.mktemp("one-flag") / "flagsvc.db")
    engineer = site.tokens["engineer"]
    objective = {"title": "Checkout that converts", "period": "2026-Q4", "owner": "payments"}
    made = api_post(site.url, engineer, "/api/v1/objectives", objective)
    key_result = {"title": "Checkout conversion", "metric": "rate", "baseline": 31, "target": 36}
    kr = api_post(site.url, engineer, f"/api/v1/objectives/{made['id']}/key-results", key_result)
    flag = {"key": "one-click-checkout", "name": "One-click checkout", "flow_item": "feature"}
    api_post(site.url, engineer, "/api/v1/flags", {**flag, "key_result_id": kr["id"]})
    yield site
    site.live.stop()


# --- 1. a first run that leads somewhere ----------------------------------------------


def test_first_run__guide_then_flag_with_its_key_result_then_code(people, fresh):
    engineer = people("engineer", site=fresh)
    page = engineer.page
    assert page.get_by_role("heading", name="No flags yet").is_visible()
    engineer.inspect("first-run-flags")
    engineer.go("/ui/flags/new")
    page.get_by_role("textbox", name="Key", exact=True).fill("one-click-checkout")
    page.get_by_role("textbox", name="Name", exact=True).fill("One-click checkout")
    page.get_by_label("Flow item").select_option("feature")
    page.get_by_role("textbox", name="Objective", exact=True).fill("Checkout that converts")
    assert page.get_by_label("Period").input_value()  # a picker, this quarter chosen
    page.get_by_label("Owner team").fill("payments")
    page.get_by_role("textbox", name="Key result", exact=True).fill("Checkout conversion")
    page.get_by_label("Metric").fill("conversion rate")
    page.get_by_label("Baseline").fill("31")
    page.get_by_label("Target").fill("36")
    engineer.inspect("first-run-flag-form")
    page.get_by_role("button", name="Create flag").click()
    page.wait_for_url(re.compile(r".*/ui/flags/one-click-checkout$"))
    assert "Checkout conversion" in page.inner_text("main")
    assert 'flags.is_enabled("one-click-checkout", context)' in page.inner_text("#code")
    engineer.inspect("first-run-flag-page")
    engineer.go("/ui/start")
    assert page.locator(".step.is-done").count() == 2
    engineer.inspect("getting-started")


def test_first_run__marketing_and_viewer_land_where_their_work_is(people, fresh):
    marketer = people("marketing", site=fresh)
    assert marketer.page.url.endswith("/ui/readiness")
    marketer.inspect("first-run-readiness")
    leader = people("viewer", site=fresh)
    assert leader.page.url.endswith("/ui/okrs")
    leader.inspect("first-run-okrs")


# --- 2. the admin area ------------------------------------------------------------------


def test_admin__sdk_key_and_token_shown_once_then_revoked(people, fresh):
    admin = people("admin", site=fresh)
    admin.go("/ui/admin")
    page = admin.page
    admin.inspect("admin")
    page.get_by_role("button", name="Create an SDK key for Production").click()
    secret = page.get_by_label("The new secret").input_value()
    assert secret.startswith("fss_production_")
    admin.inspect("admin-secret-shown")
    admin.go("/ui/admin")
    assert page.get_by_label("The new secret").count() == 0  # shown once
    page.get_by_role("button", name=re.compile(r"^Revoke SDK key fss_production_")).click()
    page.get_by_text(
        re.compile(r"SDK key fss_production_[\w-]+… revoked in production\.")
    ).wait_for()
    page.get_by_role("textbox", name="Name", exact=True).fill("release-bot")
    page.get_by_role("button", name="Create token").click()
    assert page.get_by_label("The new secret").input_value().startswith("fst_")
    page.get_by_role("button", name="Revoke token release-bot").click()
    page.get_by_text("Token “release-bot” revoked.").wait_for()
    admin.inspect("admin-after-revoke")


# --- 4. history people can read -------------------------------------------------------


def test_history__audit_newest_first_in_words_paged_and_filtered(people, demo):
    auditor = people("viewer", site=demo)
    auditor.go("/ui/audit")
    page = auditor.page
    first = page.locator("p.sentence").first.inner_text()
    assert "{" not in first
    auditor.inspect("audit")
    page.get_by_role("link", name="Older →").first.click()
    page.get_by_role("link", name="← Newer").first.wait_for()
    page.get_by_label("What").select_option("flag.stage_changed")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*action=flag.stage_changed.*"))
    sentences = page.locator("p.sentence").all_inner_texts()
    assert sentences and all(s.startswith("Stage in ") for s in sentences)
    times = page.locator("tbody time").evaluate_all("ts => ts.map(t => t.dateTime)")
    assert times == sorted(times, reverse=True)  # newest first, never back and forth


# --- 3. the flag page offers only valid next steps ---------------------------------------


def test_flag_page__gate_says_why_before_the_click_and_refusals_survive_reload(people, one_flag):
    engineer = people("engineer", site=one_flag)
    engineer.go("/ui/flags/one-click-checkout")
    page = engineer.page
    production = engineer.env("production")
    production.get_by_role("button", name="Start early access in Production").click()  # no cohort:
    page.get_by_text("Now early access in production.").wait_for()  # confirmed in the dialog
    production = engineer.env("production")
    start = production.get_by_role("button", name="Start general rollout at 10 % in Production")
    assert start.is_disabled()
    assert (
        "Waits for launch readiness: Documentation published"
        in production.locator(".gate-reason").inner_text()
    )
    assert production.get_by_role("button", name="Kill switch").count() == 1
    assert engineer.env("development").get_by_role("button", name="Kill switch").count() == 0
    engineer.inspect("flag-page-next-steps")
    production.get_by_label("Other percentage").fill("30")
    production.get_by_role("button", name="Set").click()  # the gate refuses it: a 409, redirected
    page.get_by_role("alert").filter(has_text="waits for launch readiness").first.wait_for()
    assert page.url.endswith("/ui/flags/one-click-checkout#env-production")
    engineer.inspect("flag-page-refused")
    page.reload()  # a GET: nothing is sent again, the page is as it is now
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("alert").filter(has_text="waits for launch readiness").count() == 0
