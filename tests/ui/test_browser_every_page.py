"""Every page of the UI, in a real browser, on the demo's quarter of history.

Issue 15's checks ask for each page, not only the ones a story passes through: here an
admin (who sees every page) opens each GET route ``flagsvc.ui`` serves and inspects it
(``Person.inspect``): no horizontal overflow at 390 px, no serious or critical axe-core
violation and no console error, at 1280 and 390 px, light and dark. A route added to the
UI without a place in ``PAGES`` fails ``test_pages__cover_every_route``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from flagsvc import create_app
from tests.ui.browser import Site
from tests.ui.browser import sign_in_as

FLAG = "{flag}"
COHORT = "{cohort}"
PAGES = {
    "/": "home",
    "/start": "start",
    "/flags": "flags",
    "/flags/new": "flag-new",
    f"/flags/{FLAG}": "flag",
    f"/flags/{FLAG}/edit": "flag-edit",
    f"/flags/{FLAG}/readiness": "flag-readiness",
    "/cohorts": "cohorts",
    "/cohorts/new": "cohort-new",
    f"/cohorts/{COHORT}": "cohort",
    "/okrs": "okrs",
    "/readiness": "readiness",
    "/timing": "timing",
    "/value-streams": "value-streams",
    "/promise-board": "promise-board",
    "/audit": "audit-page",
    "/audit/verify": "audit-verify",
    "/admin": "admin-page",
    "/admin/webhooks": "admin-webhooks",
    "/admin/webhooks/{webhook}/edit": "admin-webhook-edit",
    "/sdk-keys": "sdk-keys",
    "/no-such-page": "not-found",
}
NOT_PAGES = {
    "/audit/export.csv",  # a download
    "/promise-board.<string:fmt>",  # CSV and Atom
    "/<path:_unknown>",  # the 404 page, visited as /no-such-page
    "/sign-in",  # visited signed out below
}


def _ui_routes() -> set[str]:
    app = create_app({"database_url": "sqlite://", "testing": True, "redis_url": None})
    return {
        rule.rule.removeprefix("/ui")
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("ui.")
        and "GET" in (rule.methods or ())
        and rule.endpoint != "ui.static"
    }


def test_pages__cover_every_route():
    named = {re.sub(r"\{(\w+)\}", "", path) for path in PAGES}
    routes = {re.sub(r"<[^>]+>", "", rule) for rule in _ui_routes()}
    assert routes - named - {re.sub(r"<[^>]+>", "", p) for p in NOT_PAGES} == set()


def _first_link(admin: Any, path: str, pattern: str, part: int = -1) -> str:
    """The ``part`` of the first link like ``pattern`` on ``path`` (the last segment: a key)."""
    admin.go(path)
    hrefs = admin.page.locator("main a[href]").evaluate_all("as => as.map(a => a.pathname)")
    found = [h for h in hrefs if re.fullmatch(pattern, h)]
    assert found, f"no link like {pattern} on {path}"
    return str(found[0].split("/")[part])


@pytest.fixture(scope="module")
def keys(chromium: Any, demo: Site) -> dict[str, str]:
    """A flag, a cohort and a webhook of the demo's, as the admin's lists link them
    (found once per test process, then each page is its own test)."""
    admin = sign_in_as(chromium, demo, "admin")
    try:
        return {
            "flag": _first_link(admin, "/ui/flags", r"/ui/flags/[\w.-]+"),
            "cohort": _first_link(admin, "/ui/cohorts", r"/ui/cohorts/(?!new$)[\w.-]+"),
            "webhook": _first_link(admin, "/ui/admin/webhooks", r"/ui/admin/webhooks/\d+/edit", -2),
        }
    finally:
        admin.close()


# One test per page: the four axe-core checks and screenshots of a page take seconds, so
# xdist spreads the pages over its workers instead of one worker checking them all.
@pytest.mark.parametrize(("path", "name"), PAGES.items(), ids=PAGES.values())
def test_every_page__inspected_light_and_dark_at_both_widths(people, demo, keys, path, name):
    admin = people("admin", site=demo)
    response = admin.go("/ui" + path.format(**keys))
    assert response is not None and response.status < 500, path
    admin.inspect(f"every-{name}")


def test_sign_in_page__inspected_light_and_dark_at_both_widths(people, demo):
    visitor = people("viewer", site=demo, signed_in=False)
    visitor.go("/ui/sign-in")
    visitor.inspect("every-sign-in")
