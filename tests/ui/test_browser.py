"""The admin UI in a real browser (Debian's Chromium through Playwright) against a real service.

One ``flagsvc serve`` process (gunicorn, as deployed) on a temporary SQLite database runs
for the module; each test opens fresh browser contexts (own cookies) for the people in
it. The story test walks the whole staged release as an engineer and a marketing user
would, clicking through the pages; the others check sign-in, roles, CSRF and that the
core forms work without JavaScript. With ``FLAGSVC_SCREENSHOTS=1`` (``make screenshots``)
every page visited is saved as a screenshot in ``test-artifacts/screenshots/`` for a
human to look at; otherwise only a failed test's pages are.

Skipped with a reason when Debian's Chromium is missing (``tests/ui/browser.py``,
``CHROMIUM``); a failure when ``FLAGSVC_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import re
from typing import Any

from tests.ui.browser import Person
from tests.ui.browser import Site
from tests.ui.browser import api_post

ITEMS = ("Documentation published", "Announcement ready", "Support team enabled", "Sales briefed")


# --- the staged release, clicked through -------------------------------------------


def _create_okr(engineer: Person) -> None:
    engineer.go("/ui/okrs")
    page = engineer.page
    assert page.locator("details", has=page.locator("#objective-title")).get_attribute("open") == ""
    page.get_by_label("Title").first.fill("Faster checkout")  # open: the board is empty
    page.locator("#objective-period").select_option("2026-Q4")  # picked, not typed
    page.locator("#objective-owner").fill("payments")
    page.get_by_role("button", name="Create objective").click()
    objective = page.locator("section.objective", has_text="Faster checkout")
    objective.get_by_text("Add a key result").click()
    form = objective.locator("form", has=page.get_by_role("button", name="Add key result"))
    for label, value in (("Title", "Checkout conversion"), ("Metric", "conversion rate"),
                         ("Baseline", "0.31"), ("Target", "0.36"), ("Unit", "ratio")):  # fmt: skip
        form.get_by_label(label, exact=False).first.fill(value)
    form.get_by_role("button", name="Add key result").click()
    page.get_by_text("Key result added.").wait_for()
    engineer.shot("okrs-board")


def _create_flag(engineer: Person) -> None:
    engineer.go("/ui/flags/new")
    page = engineer.page
    page.get_by_role("textbox", name="Key", exact=True).fill(
        "One Click!"
    )  # refused first: the values must survive
    page.get_by_role("textbox", name="Name", exact=True).fill("One-click checkout")
    page.get_by_label("Flow item").select_option("feature")
    page.get_by_label("Serves key result").select_option(label="Checkout conversion")
    page.get_by_role("button", name="Create flag").click()
    assert "Use 1-100 lowercase letters" in page.locator("#flag-key-error").inner_text()
    assert (
        page.get_by_role("textbox", name="Name", exact=True).input_value() == "One-click checkout"
    )
    engineer.shot("flag-new-validation-error")
    page.get_by_role("textbox", name="Key", exact=True).fill("one-click-checkout")
    page.get_by_role("button", name="Create flag").click()
    page.wait_for_url(re.compile(r".*/ui/flags/one-click-checkout$"))


def _create_cohort(engineer: Person) -> None:
    engineer.go("/ui/cohorts/new")
    page = engineer.page
    page.get_by_role("textbox", name="Key", exact=True).fill("early-adopters")
    page.get_by_role("textbox", name="Name", exact=True).fill("Early adopters")
    page.get_by_label("Attribute of rule 1").fill("plan")
    page.get_by_label("Condition of rule 1").select_option("in")
    page.get_by_label("Values of rule 1").fill("beta\ninsider")
    page.get_by_label("Paste user keys, one per line").fill("vip-1\nvip-2\nvip-3")
    page.get_by_label("Attributes (one name = value per line)").fill("plan = beta")
    page.get_by_role("textbox", name="User key", exact=True).fill(
        "someone-new"
    )  # htmx previews as you type
    page.locator("#preview-result").get_by_text("would be", exact=False).wait_for()
    assert "be in the cohort" in page.locator("#preview-result").inner_text()
    engineer.shot("cohort-new-with-preview")
    page.get_by_role("button", name="Create cohort").click()
    page.wait_for_url(re.compile(r".*/ui/cohorts/early-adopters$"))
    assert "3" in page.locator(".big-number").inner_text()
    engineer.shot("cohort-detail")


def _early_access(engineer: Person) -> None:
    engineer.go("/ui/flags/one-click-checkout")
    production = engineer.env("production")
    production.get_by_label("Early adopters").check()
    production.get_by_role("button", name="Save cohorts").click()
    engineer.page.get_by_text("Early-access cohorts in production saved.").wait_for()
    engineer.env("production").get_by_role("button", name="Start early access").click()
    engineer.page.get_by_text("Now early access in production.").wait_for()
    production = engineer.env("production")
    general = production.get_by_role("button", name="Start general rollout at 10 % in Production")
    assert general.is_disabled()  # the gate says no before the click, and why
    assert "Documentation published" in production.locator(".gate-reason").inner_text()
    engineer.shot("flag-general-waits")


def _marketing_ticks_everything(marketer: Person) -> None:
    marketer.go("/ui/readiness")
    page = marketer.page
    waiting = page.locator("section", has_text="Waiting on us")
    assert "One-click checkout" in waiting.inner_text()
    marketer.shot("readiness-board-waiting")
    waiting.get_by_role("link", name="Work on it").click()
    for number, label in enumerate(ITEMS, start=1):
        page.get_by_label(f"Note for {label}").fill(f"done by Mia ({number})")
        page.get_by_role("button", name=f"Mark {label} done").click()
        page.get_by_role("button", name=f"Mark {label} not done").wait_for()  # swapped by htmx
    page.get_by_text("the flag is ready to launch").wait_for()
    assert page.get_by_text("Ready since").is_visible()
    marketer.shot("readiness-flag-ready")


def _ramp_and_release(engineer: Person) -> None:
    engineer.go("/ui/flags/one-click-checkout")
    steps = ("Start general rollout at 10 % in Production", "Ramp up to 50 % in Production",
             "Ramp up to 100 % in Production")  # fmt: skip
    for name, shown in zip(steps, ("10%", "50%", "100%"), strict=True):
        engineer.env("production").get_by_role("button", name=name).click()
        engineer.page.get_by_text(f"General rollout in production is now at {shown}.").wait_for()
    engineer.env("production").get_by_role("button", name="Release to everyone").click()
    engineer.page.get_by_text("Now released in production.").wait_for()
    assert "released" in engineer.env("production").locator(".env-stage").inner_text()
    engineer.shot("flag-detail-released")


def test_release_story__engineer_and_marketing_through_the_pages(people):
    engineer = people("engineer")
    engineer.shot("flags-empty")
    _create_okr(engineer)
    _create_flag(engineer)
    _create_cohort(engineer)
    _early_access(engineer)
    marketer = people("marketing")
    _marketing_ticks_everything(marketer)
    _ramp_and_release(engineer)
    engineer.go("/ui/flags")
    engineer.shot("flags-list")
    engineer.go("/ui/cohorts")
    engineer.shot("cohorts-list")
    engineer.go("/ui/audit?flag=one-click-checkout")
    assert engineer.page.locator("code", has_text="flag.stage_changed").count() == 5
    engineer.shot("audit-log")
    engineer.go("/ui/audit/verify")
    assert engineer.page.get_by_role("heading", name="Chain intact").is_visible()
    engineer.shot("audit-verify")
    assert engineer.problems == [] and marketer.problems == []  # no CSP violation, no JS error


# --- roles, CSRF, sign-in, no JavaScript -------------------------------------------


def _flag_exists(service: Site) -> None:
    """A flag to look at, made through the API (these tests are about the pages)."""
    token = service.tokens["admin"]
    status, _body = service.live.get("/api/v1/flags/role-demo", token)
    if status == 200:
        return

    def post(path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return api_post(service.url, token, path, payload)

    objective = post("/api/v1/objectives", {"title": "Roles", "period": "2026", "owner": "qa"})
    kr = post(f"/api/v1/objectives/{objective['id']}/key-results",
              {"title": "Role KR", "metric": "m", "baseline": 0, "target": 1})  # fmt: skip
    post(
        "/api/v1/flags",
        {
            "key": "role-demo",
            "name": "Role demo",
            "flow_item": "feature",
            "key_result_id": kr["id"],
        },
    )


def _forged_post(person: Person, path: str, fields: dict[str, str]) -> int:
    """POST from inside the page with its real CSRF token: only the role can refuse it."""
    return int(person.page.evaluate(
        """async ([path, fields]) => {
            const body = new FormData();
            body.append("csrf_token", document.querySelector("input[name=csrf_token]").value);
            for (const [k, v] of Object.entries(fields)) body.append(k, v);
            return (await fetch(path, {method: "POST", body})).status;
        }""",
        [path, fields],
    ))  # fmt: skip


def test_roles__marketing_sees_no_stage_buttons_and_a_forged_move_gets_403(people, service):
    _flag_exists(service)
    marketer = people("marketing")
    marketer.go("/ui/flags/role-demo")
    for name in ("Start early access", "Kill switch", "Save cohorts", "Edit flag"):
        assert marketer.page.get_by_role("button", name=name).count() == 0
    assert marketer.page.get_by_role("link", name="Edit flag").count() == 0
    marketer.shot("flag-detail-as-marketing")
    path = "/ui/flags/role-demo/environments/production/stage"
    assert _forged_post(marketer, path, {"stage": "early_access"}) == 403
    response = marketer.go("/ui/flags/new")
    assert response.status == 403
    assert "Your role (marketing) may not edit flags" in marketer.page.inner_text("main")
    marketer.shot("forbidden")


def test_roles__engineer_cannot_tick_readiness(people, service):
    _flag_exists(service)
    engineer = people("engineer")
    engineer.go("/ui/flags/role-demo/readiness")
    assert engineer.page.get_by_role("button", name=re.compile("^Mark ")).count() == 0
    assert _forged_post(engineer, "/ui/flags/role-demo/readiness/docs", {"done": "true"}) == 403


def test_csrf__tampered_token__400_page_and_nothing_created(people):
    engineer = people("engineer")
    engineer.go("/ui/okrs")
    engineer.page.get_by_text("New objective").click()
    engineer.page.evaluate(
        "document.querySelectorAll('input[name=csrf_token]').forEach(i => i.value = 'tampered')"
    )
    engineer.page.get_by_label("Title").first.fill("Forged objective")
    engineer.page.locator("#objective-period").select_option("2026")
    engineer.page.locator("#objective-owner").fill("x")
    with engineer.page.expect_response(lambda r: r.request.method == "POST") as answer:
        engineer.page.get_by_role("button", name="Create objective").click()
    assert answer.value.status == 400
    assert "security token is missing or out of date" in engineer.page.inner_text("main")
    engineer.shot("csrf-rejected")
    engineer.go("/ui/okrs")
    assert "Forged objective" not in engineer.page.inner_text("main")


def test_sign_in__wrong_token_then_right_one(people, service):
    visitor = people("viewer", signed_in=False)
    visitor.go("/ui/audit")
    assert "/ui/sign-in" in visitor.page.url
    visitor.page.get_by_label("Token").fill("fst_wrong")
    visitor.page.get_by_role("button", name="Sign in").click()
    assert "unknown or has been revoked" in visitor.page.get_by_role("alert").inner_text()
    visitor.shot("sign-in-error")
    visitor.page.get_by_label("Token").fill(service.tokens["viewer"])
    visitor.page.get_by_role("button", name="Sign in").click()
    visitor.page.wait_for_url(re.compile(r".*/ui/audit$"))
    visitor.page.get_by_role("button", name="Sign out").click()
    visitor.page.wait_for_url(re.compile(r".*/ui/sign-in$"))
    visitor.shot("sign-in")


def test_without_javascript__readiness_tick_and_filters_still_work(people, service):
    _flag_exists(service)
    marketer = people("marketing", javascript=False)
    marketer.go("/ui/flags/role-demo/readiness")
    marketer.page.get_by_label("Note for Documentation published").fill("no-JS tick")
    marketer.page.get_by_role("button", name="Mark Documentation published done").click()
    marketer.page.get_by_text("Item marked done.").wait_for()
    assert marketer.page.get_by_role(
        "button", name="Mark Documentation published not done"
    ).is_visible()
    marketer.go("/ui/flags")
    marketer.page.get_by_label("Search key or name").fill("role")
    marketer.page.get_by_role("button", name="Filter").click()
    assert "role-demo" in marketer.page.inner_text("#flag-results")


def test_keyboard__skip_link_and_visible_focus(people):
    viewer = people("viewer")
    viewer.go("/ui/flags")
    viewer.page.keyboard.press("Tab")
    focused = viewer.page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to main content"
    outline = viewer.page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"


# --- release timing on a quarter of demo history -----------------------------------


def test_timing__bottleneck_named_and_charts_drawn_on_demo_history(people, demo):
    leader = people("viewer", site=demo)
    leader.go("/ui/timing")
    bottleneck = leader.page.locator("section.bottleneck").inner_text()
    assert "Releases spend longest in" in bottleneck
    charts = leader.page.locator("svg[role=img]")
    assert charts.count() >= 5
    for index in range(charts.count()):
        box = charts.nth(index).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 20
    leader.shot("timing-flow")
    leader.page.get_by_label("Objective").select_option(index=1)
    leader.page.get_by_role("button", name="Show").click()
    leader.page.get_by_role("heading", name=re.compile("^Timeline of ")).wait_for()
    leader.shot("timing-objective")
    for name, path in (("demo-flags", "/ui/flags"), ("demo-okrs", "/ui/okrs"),
                       ("demo-readiness", "/ui/readiness"), ("demo-flag-detail", "/ui/flags/one-click-checkout")):  # fmt: skip
        leader.go(path)
        leader.shot(name)
    assert leader.problems == []
