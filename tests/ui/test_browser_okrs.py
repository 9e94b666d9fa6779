"""The OKR board as leaders and engineers use it, in a real browser (issue 15, item 8).

Objectives and key results are edited and deleted on the board (asked first; refused
while in use), periods are picked, not typed, and each objective shows its roll-up.
Each page is inspected at 1280 and 390 px, light and dark.
"""

from __future__ import annotations

import re
from typing import Any

from tests.ui.browser import Site
from tests.ui.browser import api_post


def _objective(service: Site, flag_key: str) -> tuple[int, int, int]:
    """An objective with a key result a flag serves and one no flag serves."""
    token = service.tokens["engineer"]
    made = api_post(service.url, token, "/api/v1/objectives",
                    {"title": "Checkout that converts", "period": "2026-Q4", "owner": "payments"})  # fmt: skip
    path = f"/api/v1/objectives/{made['id']}/key-results"
    served = api_post(service.url, token, path,
                      {"title": "Checkout conversion", "metric": "rate", "baseline": 30, "target": 40, "current": 35})  # fmt: skip
    spare = api_post(service.url, token, path,
                     {"title": "Cart size", "metric": "items", "baseline": 2, "target": 3, "current": 3})  # fmt: skip
    api_post(service.url, token, "/api/v1/flags", {"key": flag_key, "name": "One-click",
             "flow_item": "feature", "key_result_id": served["id"]})  # fmt: skip
    return made["id"], served["id"], spare["id"]


def test_okrs__edit_delete_rollup_and_period_picker(people, service):
    objective_id, _, _ = _objective(service, "one-click")
    engineer = people("engineer")
    engineer.go("/ui/okrs")
    page = engineer.page
    card = page.locator(f"#objective-{objective_id}")
    assert "75% of the way, the mean of its 2 key results" in card.locator(".rollup").inner_text()
    history = card.locator(".kr-history").first
    history.get_by_text("History (1 change)").click()
    assert "Created key result" in history.inner_text()
    assert "days in production:" in card.locator(".flow-line").inner_text()
    engineer.inspect("okrs-board")
    card.get_by_text("Edit objective").click()
    page.locator(f"#obj-edit-{objective_id}-title").fill("Checkout in one step")
    page.locator(f"#obj-edit-{objective_id}-period").select_option("2027-Q1")
    card.get_by_role("button", name="Save objective").click()
    page.get_by_text("Objective saved.").wait_for()
    assert page.get_by_role("heading", name="Checkout in one step").is_visible()
    assert "2027-Q1" in page.locator(f"#objective-{objective_id} .subtitle").inner_text()
    page.locator("#period").select_option("2027-Q1")  # the filter
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*period=2027-Q1.*"))
    engineer.go("/ui/okrs")
    card = page.locator(f"#objective-{objective_id}")
    spare = card.locator(
        ".key-result", has=page.get_by_role("heading", name=re.compile("Cart size"))
    )
    spare.get_by_text("Edit key result").click()
    engineer.accept_dialogs = False
    spare.get_by_role("button", name="Delete key result").click()
    page.wait_for_timeout(300)
    assert engineer.dialogs and "Cart size" in engineer.dialogs[-1]
    engineer.accept_dialogs = True
    spare.get_by_role("button", name="Delete key result").click()
    page.get_by_text("Key result deleted.").wait_for()
    assert page.get_by_role("heading", name=re.compile("Cart size")).count() == 0
    served = page.locator(f"#objective-{objective_id} .key-result").first
    served.get_by_text("Edit key result").click()
    assert served.get_by_role("button", name="Delete key result").count() == 0
    assert "once no flag serves it" in served.inner_text()
    engineer.inspect("okrs-after-edits")


def test_okrs__stale_edit_is_refused_with_what_changed(people, service, chromium: Any):
    objective_id, _, _ = _objective(service, "one-step")
    first, second = people("engineer"), people("admin")
    for person in (first, second):
        person.go("/ui/okrs")
        person.page.locator(f"#objective-{objective_id}").get_by_text("Edit objective").click()
    card = second.page.locator(f"#objective-{objective_id}")
    second.page.locator(f"#obj-edit-{objective_id}-owner").fill("growth")
    card.get_by_role("button", name="Save objective").click()
    second.page.get_by_text("Objective saved.").wait_for()
    card = first.page.locator(f"#objective-{objective_id}")
    first.page.locator(f"#obj-edit-{objective_id}-owner").fill("checkout")
    card.get_by_role("button", name="Save objective").click()
    alert = first.page.locator(f"#objective-{objective_id} [role=alert]")
    alert.wait_for()
    assert "growth" in alert.inner_text() or "changed" in alert.inner_text()
    first.inspect("okrs-stale-edit")
