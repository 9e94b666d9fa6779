"""Cohorts as engineers use them, in a real browser (issue 15, item 7).

"Used by" is a count that opens into the list; the size says explicit members and,
apart, that rules may match more; a cohort no flag uses can be deleted (asked first).
Each page is inspected at 1280 and 390 px, light and dark.
"""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

from tests.ui.browser import Site
from tests.ui.browser import api_post


def test_cohort__used_by_count_expands_size_says_members_and_unused_one_deleted(people, service):
    admin = service.tokens["admin"]
    rules = [{"attribute": "plan", "op": "in", "values": ["beta"]}]
    api_post(service.url, admin, "/api/v1/cohorts",
             {"key": "beta-testers", "name": "Beta testers", "rules": rules})  # fmt: skip
    api_post(service.url, admin, "/api/v1/cohorts/beta-testers/members", {"add": ["u1", "u2"]})
    engineer = people("engineer")
    engineer.go("/ui/cohorts/beta-testers")
    page = engineer.page
    size = page.locator("section", has=page.get_by_role("heading", name="Size")).inner_text()
    assert "explicit members" in size and "may match more users" in size
    assert "No flag uses this cohort yet." in page.locator("main").inner_text()
    engineer.inspect("cohort-unused")
    engineer.accept_dialogs = False
    page.get_by_role("button", name="Delete cohort").click()
    page.wait_for_timeout(300)
    assert engineer.dialogs and "Beta testers" in engineer.dialogs[-1]
    assert page.url.endswith("/ui/cohorts/beta-testers")  # "Cancel": nothing happened
    engineer.accept_dialogs = True
    page.get_by_role("button", name="Delete cohort").click()
    page.wait_for_url(re.compile(r".*/ui/cohorts$"))
    assert "Cohort beta-testers deleted." in engineer.notice()
    assert "Beta testers" not in page.locator("main").inner_text()
    engineer.inspect("cohort-deleted")


def test_cohort__in_use__count_opens_into_flags_and_no_delete(people, service):
    admin = service.tokens["admin"]
    api_post(service.url, admin, "/api/v1/cohorts", {"key": "vips", "name": "VIPs"})
    objective = api_post(service.url, admin, "/api/v1/objectives",
                         {"title": "Keep VIPs", "period": "2026-Q4", "owner": "crm"})  # fmt: skip
    kr = api_post(service.url, admin, f"/api/v1/objectives/{objective['id']}/key-results",
                  {"title": "Churn", "metric": "churn", "baseline": 5, "target": 3})  # fmt: skip
    for key in ("vip-lounge", "vip-support"):
        api_post(service.url, admin, "/api/v1/flags",
                 {"key": key, "name": key, "flow_item": "feature", "key_result_id": kr["id"]})  # fmt: skip
        for env in ("staging", "production"):
            request_path = f"/api/v1/flags/{key}/environments/{env}/cohorts"
            _put(service, request_path, {"cohorts": ["vips"]})
    engineer = people("engineer")
    engineer.go("/ui/cohorts/vips")
    page = engineer.page
    used = page.locator("details.used-by")
    assert used.locator("summary").inner_text().startswith("2 flags (4 environments)")
    assert not used.get_by_role("link", name="vip-lounge").first.is_visible()
    used.locator("summary").click()
    assert used.get_by_role("link", name="vip-lounge").first.is_visible()
    assert page.get_by_role("button", name="Delete cohort").count() == 0
    engineer.inspect("cohort-used")


def _put(service: Site, path: str, payload: dict[str, Any]) -> Any:
    """PUT with the If-Match the API requires (the state's current ETag)."""
    auth = {"Authorization": f"Bearer {service.tokens['admin']}"}
    state = urllib.request.Request(service.url + path.rsplit("/", 1)[0], headers=auth)
    with urllib.request.urlopen(state, timeout=10) as response:
        etag = response.headers["ETag"]
    request = urllib.request.Request(
        service.url + path, data=json.dumps(payload).encode(), method="PUT"
    )
    request.add_header("Authorization", auth["Authorization"])
    request.add_header("If-Match", etag)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _crowd(service: Site) -> None:
    admin = service.tokens["admin"]
    api_post(service.url, admin, "/api/v1/cohorts", {"key": "crowd", "name": "Crowd", "rules": []})
    keys = [f"user-{n:03d}" for n in range(230)] + ["vip-anna", "vip-bo"]
    api_post(service.url, admin, "/api/v1/cohorts/crowd/members", {"add": keys})


def test_cohort_members__search_as_you_type_and_page_both_ways(people, service):
    _crowd(service)
    viewer = people("viewer")
    viewer.go("/ui/cohorts/crowd")
    page = viewer.page
    assert "232 explicit members, 1–100 shown" in page.locator("#member-list").inner_text()
    page.get_by_role("link", name="Next →").click()
    page.wait_for_url(re.compile(r".*member_page=2.*"))
    assert "101–200 shown" in page.locator("#member-list").inner_text()
    page.get_by_role("link", name="← Previous").click()
    page.wait_for_url(re.compile(r".*member_page=1.*"))
    page.get_by_label("Find a member").fill("vip")  # htmx: the list follows the typing
    page.get_by_text("2 members with “vip” in the key").wait_for()
    assert page.locator("table.members tbody tr").count() == 2
    assert "member_q=vip" in page.url
    viewer.inspect("cohort-members-search")


def test_cohort_members__search_without_javascript(people, service):
    viewer = people("viewer", javascript=False)
    viewer.go("/ui/cohorts/crowd")
    page = viewer.page
    page.get_by_label("Find a member").fill("user-22")
    page.get_by_role("button", name="Find").click()
    page.wait_for_url(re.compile(r".*member_q=user-22.*"))
    assert page.locator("table.members tbody tr").count() == 10


def test_cohort_rules__error_lands_on_the_row_typed_in_plain_words(people, service):
    engineer = people("engineer")
    engineer.go("/ui/cohorts/new")
    page = engineer.page
    page.locator("#cohort-key").fill("versions")
    page.locator("#cohort-name").fill("New versions")
    page.get_by_label("Attribute of rule 1").fill("plan")
    page.get_by_label("Values of rule 1").fill("pro")
    page.get_by_role("button", name="Add a rule").click()  # row 3; row 2 stays blank
    page.get_by_label("Attribute of rule 3").fill("app_version")
    page.get_by_label("Condition of rule 3").select_option("semver_gte")
    page.get_by_label("Values of rule 3").fill("2.1.0\nsoon")
    page.get_by_role("button", name="Create cohort").click()
    error = page.locator("#cohort-rules-2-values-error")
    error.wait_for()
    assert "Line 2 (“soon”) is not a version like 1.4.0." in error.inner_text()
    assert page.locator("#cohort-rules-1-values-error").count() == 0
    assert page.get_by_label("Values of rule 3").input_value() == "2.1.0\nsoon"
    engineer.inspect("cohort-rule-error-row")
