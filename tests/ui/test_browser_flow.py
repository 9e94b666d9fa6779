"""Flow as key results in a real browser: a measured key result on the OKR board."""

from __future__ import annotations

from tests.ui.browser import api_post


def test_okr_board__measured_key_result__trend_and_table(people, service):
    token = service.tokens["engineer"]
    objective = api_post(service.url, token, "/api/v1/objectives",
                         {"title": "Deliver sooner", "period": "2026-Q4", "owner": "platform"})  # fmt: skip
    body = {"title": "Median flow time", "metric": "flow time", "baseline": 30, "target": 10,
            "measure": {"metric": "flow_time_p50", "objective_id": objective["id"]}}  # fmt: skip
    api_post(service.url, token, f"/api/v1/objectives/{objective['id']}/key-results", body)
    leader = people("viewer")
    leader.go("/ui/okrs")
    page = leader.page
    card = page.locator(f"#objective-{objective['id']}")
    assert "Measured from the audit" in card.inner_text()
    assert card.get_by_text("Trend of Median flow time: nothing in this period yet").is_visible()
    card.get_by_text("Weekly values", exact=True).click()
    assert card.get_by_role("table", name="Weekly values of Median flow time").is_visible()
    leader.inspect("okrs-measured")


def test_promise_board__marketing_reads_it(people, service):
    marketer = people("marketing")
    page = marketer.page
    page.get_by_role("link", name="Safe to promise").first.click()
    page.wait_for_url("**/ui/promise-board")
    assert page.get_by_role("heading", name="Safe to promise", level=1).is_visible()
    assert "Nothing is safe to promise yet" in page.inner_text("main")
    marketer.inspect("promise-board-empty")


def test_value_streams__engineer_creates_one_leader_compares(people, service):
    engineer = people("engineer")
    engineer.go("/ui/value-streams")
    page = engineer.page
    page.get_by_text("New value stream").click()
    page.get_by_role("textbox", name="Key").fill("payments")
    page.get_by_role("textbox", name="Name", exact=True).fill("Payments")
    page.get_by_role("button", name="Create value stream").click()
    page.wait_for_url("**/ui/value-streams")
    assert page.locator("#stream-payments").is_visible()
    leader = people("viewer")
    leader.go("/ui/value-streams")
    assert leader.page.locator("#stream-payments").is_visible()
    leader.inspect("value-streams")
