"""Small screens and taste (issue 15 item 9), in a real browser at 1280 and 390 px.

The menu folds behind "Menu" on a phone (with and without JavaScript), dark mode follows
the system, the flag list sorts and pages both ways, and a page shows one banner.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.browser import Site
from tests.ui.browser import api_post
from tests.ui.browser import new_site

FLAGS = 55  # more than one page of 50


@pytest.fixture(scope="module")
def many_flags(tmp_path_factory: pytest.TempPathFactory, chromium: Any) -> Iterator[Site]:
    """An install with more flags than one page holds, named out of creation order."""
    site = new_site(tmp_path_factory.mktemp("many") / "flagsvc.db")
    engineer = site.tokens["engineer"]
    objective = {"title": "Faster checkout", "period": "2026-Q4", "owner": "payments"}
    made = api_post(site.url, engineer, "/api/v1/objectives", objective)
    key_result = {"title": "Checkout time", "metric": "s", "baseline": 60, "target": 30}
    kr = api_post(site.url, engineer, f"/api/v1/objectives/{made['id']}/key-results", key_result)
    for n in range(FLAGS):
        flag = {
            "key": f"feature-{n:02d}",
            "name": f"Feature {FLAGS - n:02d}",
            "flow_item": "feature",
        }
        api_post(site.url, engineer, "/api/v1/flags", {**flag, "key_result_id": kr["id"]})
    yield site
    site.live.stop()


def _width(person: Any, width: int) -> None:
    person.page.set_viewport_size({"width": width, "height": 900})


def test_menu__folds_on_a_phone_and_opens(people, many_flags):
    person = people("engineer", site=many_flags)
    person.go("/ui/flags")
    page = person.page
    audit_link = page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit")
    assert audit_link.is_visible()  # wide: the whole menu, no "Menu" button
    assert not page.locator("details.menu > summary").is_visible()
    _width(person, 390)
    header = page.locator(".site-header").bounding_box()
    assert header["height"] < 70, header  # one row: the brand and "Menu"
    assert not audit_link.is_visible()
    page.locator("details.menu > summary").click()
    assert audit_link.is_visible()
    assert page.get_by_role("button", name="Sign out").is_visible()
    person.inspect("menu-open")  # (ends at the default width)
    _width(person, 390)
    audit_link.click()
    page.wait_for_url("**/ui/audit")
    assert (
        not page.get_by_role("navigation", name="Main")
        .get_by_role("link", name="Flags")
        .is_visible()
    )


def test_menu__works_without_javascript(people, many_flags):
    person = people("engineer", javascript=False, site=many_flags)
    person.go("/ui/cohorts")
    page = person.page
    _width(person, 390)
    page.locator("details.menu > summary").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Flags").click()
    page.wait_for_url("**/ui/flags")
    _width(person, 1280)
    assert page.get_by_role("link", name="Readiness").is_visible()


def test_dark_mode__follows_the_system(people, many_flags):
    person = people("engineer", site=many_flags)
    person.go("/ui/flags")
    page = person.page
    background = "getComputedStyle(document.body).backgroundColor"
    page.emulate_media(color_scheme="light")
    light = page.evaluate(background)
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate(background)
    assert light == "rgb(244, 246, 249)" and dark == "rgb(16, 21, 31)"
    card = page.evaluate("getComputedStyle(document.querySelector('table')).backgroundColor")
    assert card == "rgb(24, 32, 45)"
    page.emulate_media(color_scheme="light")


def test_flag_list__sorts_and_pages_both_ways(people, many_flags):
    person = people("viewer", site=many_flags)
    person.go("/ui/flags")
    page = person.page
    assert "50 of 55 flags shown" in page.locator(".count").inner_text()
    assert page.get_by_text("Page 1 of 2").first.is_visible()
    page.get_by_role("link", name="Next page →").click()
    page.wait_for_url("**page=2")
    rows = page.locator("table.flags tbody tr")
    assert rows.count() == 5 and "feature-50" in rows.first.inner_text()
    person.inspect("flag-list-page-2")
    page.get_by_role("link", name="← Previous page").click()
    page.wait_for_url("**page=1")
    page.get_by_label("Sort by").select_option("name")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**sort=name**")
    page.wait_for_load_state("networkidle")
    first = page.locator("table.flags tbody tr").first.inner_text()
    assert "Feature 01" in first, first  # created last, first by name
    page.get_by_role("link", name="Next page →").click()
    page.wait_for_url("**page=2**")
    assert "sort=name" in page.url
    assert "Feature 51" in page.locator("table.flags tbody tr").first.inner_text()
    person.inspect("flag-list-by-name")


def test_flag_list__page_past_the_end_shows_the_last_page(people, many_flags):
    person = people("viewer", site=many_flags)
    person.go("/ui/flags?page=9")
    assert person.page.get_by_text("Page 2 of 2").first.is_visible()


def test_one_banner__a_refusal_is_shown_once(people, many_flags):
    person = people("engineer", site=many_flags)
    person.go("/ui/value-streams?period=1969-Q4")
    page = person.page
    assert page.locator("main .notice-error").count() <= 1
    person.go("/ui/flags?page=0")
    banners = page.locator("main .notice-error")
    assert banners.count() == 1
    assert "pages are numbered from 1" in banners.first.inner_text()
    person.inspect("flag-list-refused-page")
