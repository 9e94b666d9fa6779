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
    page = engineer.page
    engineer.go("/ui/cohorts/beta-testers")
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
    page = engineer.page
    engineer.go("/ui/cohorts/vips")
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
