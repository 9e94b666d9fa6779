"""Readiness as marketing uses it, in a real browser (issue 15, item 6).

Scheduled launches have their own list on the board; the done marks are buttons that
look like what they do (with a confirmation before undoing); a done item's note reads
as text; marketing sees labels, never item keys; a launch in the past is refused in
words, and the time field reads like every other date (``2026-12-02 19:32``). Every page
is inspected at 1280 and 390 px, light and dark, with no console error (a CSP refusal
on an htmx swap is one).
"""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest

from tests.ui.browser import Site
from tests.ui.browser import api_post

LABELS = ("Documentation published", "Announcement ready", "Support team enabled", "Sales briefed")
KEYS = ("docs", "announcement", "support_enablement", "sales_briefing")


def _api(site: Site, role: str, method: str, path: str, payload: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        site.url + path, data=json.dumps(payload).encode(), method=method
    )
    request.add_header("Authorization", f"Bearer {site.tokens[role]}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _flag_in_early_access(site: Site, key: str, name: str) -> None:
    admin = site.tokens["admin"]
    objective = api_post(site.url, admin, "/api/v1/objectives",
                         {"title": f"Objective of {name}", "period": "2026-Q4", "owner": "growth"})  # fmt: skip
    kr = api_post(site.url, admin, f"/api/v1/objectives/{objective['id']}/key-results",
                  {"title": "Signups", "metric": "signups", "baseline": 1, "target": 2})  # fmt: skip
    api_post(site.url, admin, "/api/v1/flags",
             {"key": key, "name": name, "flow_item": "feature", "key_result_id": kr["id"]})  # fmt: skip
    api_post(site.url, admin, f"/api/v1/flags/{key}/environments/production/stage",
             {"stage": "early_access"})  # fmt: skip


def _ready_with_launch(site: Site, key: str, name: str, percent: int) -> None:
    """``key`` in early access, its checklist done, general rollout scheduled in 3 days."""
    _flag_in_early_access(site, key, name)
    for item in KEYS:
        _api(site, "marketing", "PUT", f"/api/v1/flags/{key}/readiness/{item}", {"done": True})
    later = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat()
    _api(site, "marketing", "PUT", f"/api/v1/flags/{key}/environments/production/launch",
         {"launch_at": later, "rollout_percent": percent})  # fmt: skip


@pytest.fixture(scope="module")
def launches(service: Site) -> Site:
    """``sso-saml`` ready with a launch scheduled at 25 %, ``sso-oidc`` at 50 % (the one
    the launch test cancels and schedules again, so the board's stays as it was whatever
    order a worker runs them in); ``dark-mode`` waiting on its checklist."""
    _ready_with_launch(service, "sso-saml", "SSO (SAML)", 25)
    _ready_with_launch(service, "sso-oidc", "SSO (OIDC)", 50)
    _flag_in_early_access(service, "dark-mode", "Dark mode")
    return service


def test_board__lists_scheduled_launches_with_time_and_ramp(people, launches):
    marketer = people("marketing", site=launches)
    page = marketer.page
    heading = page.get_by_role("heading", name=re.compile("^Scheduled launches"))
    scheduled = page.locator("section", has=heading)
    text = scheduled.inner_text()
    assert "SSO (SAML)" in text and "Production" in text and "25 %" in text
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", text)
    marketer.inspect("readiness-board-scheduled")


def test_marks__buttons_that_look_like_what_they_do_note_as_text_undo_confirmed(people, launches):
    marketer = people("marketing", site=launches)
    marketer.go("/ui/flags/dark-mode/readiness")
    page = marketer.page
    mark = page.get_by_role("button", name="Mark Documentation published done")
    assert mark.get_attribute("aria-pressed") == "false"
    page.get_by_label("Note for Documentation published").fill("On the help site")
    mark.click()
    undo = page.get_by_role("button", name="Mark Documentation published not done")
    undo.wait_for()  # swapped by htmx
    assert undo.get_attribute("aria-pressed") == "true"
    item = page.locator("li.item", has_text="Documentation published")
    assert "On the help site" in item.inner_text()
    assert item.get_by_label("Note for Documentation published").count() == 0  # text, not input
    marketer.inspect("readiness-item-done")

    marketer.accept_dialogs = False
    undo.click()
    page.wait_for_timeout(500)
    assert marketer.dialogs and "Documentation published" in marketer.dialogs[-1]
    assert undo.get_attribute("aria-pressed") == "true"  # dismissed: still done
    marketer.accept_dialogs = True
    undo.click()
    page.get_by_role("button", name="Mark Documentation published done").wait_for()
    assert marketer.problems == []


def test_labels__marketing_never_sees_item_keys(people, launches):
    marketer = people("marketing", site=launches)
    for path in ("/ui/readiness", "/ui/flags/dark-mode/readiness"):
        marketer.go(path)
        shown = marketer.page.locator("main").inner_text()
        assert "support_enablement" not in shown and "sales_briefing" not in shown, path


def test_launch__past_time_refused_in_words_and_time_reads_like_other_dates(people, launches):
    marketer = people("marketing", site=launches)
    marketer.go("/ui/flags/sso-oidc/readiness")
    page = marketer.page
    page.get_by_role("button", name="Cancel launch").click()
    page.get_by_text("Launch in production cancelled.").wait_for()
    field = page.get_by_label("Start general rollout on (UTC)")
    assert field.get_attribute("placeholder") == "YYYY-MM-DD HH:MM"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", field.input_value())  # a suggestion
    field.fill("2020-01-02 10:00")
    page.get_by_role("button", name="Schedule").click()
    error = page.locator("#launch-production-launch_at-error").inner_text()
    assert "launch_at" not in error and "must be in the future" not in error
    assert "already past" in error and "UTC" in error
    assert field.input_value() == "2020-01-02 10:00"
    marketer.inspect("readiness-launch-past")
    soon = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d %H:%M")
    page.get_by_label("Start general rollout on (UTC)").fill(soon)
    page.get_by_role("button", name="Schedule").click()
    page.get_by_text(f"scheduled for {soon} UTC").wait_for()
