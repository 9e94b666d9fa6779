"""UI fixtures: a browser-like client per role that signs in and sends CSRF tokens.

``UiClient`` keeps a cookie jar (the signed session) and reads the CSRF token from the
last page it fetched, as a browser would; ``post(..., csrf=False)`` sends a forged form.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
from flask.testing import FlaskClient

from flagsvc.services import okrs
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Change
from flagsvc.state import AppState
from flagsvc.ui import refusals
from tests.ui.browser import CALL_REPORT
from tests.ui.browser import SHARED_CHROMIUM
from tests.ui.browser import chromium  # noqa: F401  (browser fixtures for test_browser*.py)
from tests.ui.browser import demo  # noqa: F401
from tests.ui.browser import people  # noqa: F401
from tests.ui.browser import service  # noqa: F401


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After a test's fixtures are gone, close the shared Chromium unless the next test,
    in the same module or one using a browser, will want it again."""
    yield
    same_module = nextitem is not None and getattr(nextitem, "module", None) is getattr(
        item, "module", None
    )
    if not same_module and "chromium" not in getattr(nextitem, "fixturenames", ()):
        SHARED_CHROMIUM.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep the test's own outcome on the item: ``people`` screenshots a failure's pages
    while tearing down, before it closes them."""
    outcome = yield
    if call.when == "call":
        item.stash[CALL_REPORT] = outcome.get_result()


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


class UiClient:
    """A signed-in browser stand-in for one role."""

    def __init__(self, client: FlaskClient, secret: str | None) -> None:
        self.client = client
        self.csrf = ""
        if secret:
            self.sign_in(secret)

    def sign_in(self, secret: str) -> Any:
        self.get("/ui/sign-in")
        response = self.post("/ui/sign-in", {"token": secret})
        assert response.status_code == 303, response.get_data(as_text=True)
        self.get(response.headers["Location"], follow_redirects=True)  # pick up the new CSRF token
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.client.get(path, **kwargs)
        self._remember_csrf(response)
        return response

    def post(
        self, path: str, data: dict[str, Any] | None = None, csrf: bool = True, **kwargs: Any
    ) -> Any:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.csrf_token())
        response = self.client.post(path, data=form, **kwargs)
        if response.status_code == 303 and self._carries_refusal():
            response = self.client.get(response.headers["Location"])  # its page shows why
        self._remember_csrf(response)
        return response

    def _carries_refusal(self) -> bool:
        """A refused form redirects to its page (post/redirect/get); follow it like a browser."""
        with self.client.session_transaction() as session:
            return refusals.KEY in session

    def csrf_token(self) -> str:
        if not self.csrf:
            self.get("/ui/sign-in")
        return self.csrf

    def _remember_csrf(self, response: Any) -> None:
        if response.mimetype == "text/html":
            found = CSRF_FIELD.search(response.get_data(as_text=True))
            if found:
                self.csrf = found.group(1)


@pytest.fixture
def ui(app) -> Any:
    """Make a fresh browser (own cookie jar) for a secret: ``ui(secrets["engineer"])``."""

    def make(secret: str | None) -> UiClient:
        return UiClient(app.test_client(), secret)

    return make


@pytest.fixture
def ui_admin(ui, secrets) -> UiClient:
    return ui(secrets["admin"])


@pytest.fixture
def ui_engineer(ui, secrets) -> UiClient:
    return ui(secrets["engineer"])


@pytest.fixture
def ui_marketing(ui, secrets) -> UiClient:
    return ui(secrets["marketing"])


@pytest.fixture
def ui_viewer(ui, secrets) -> UiClient:
    return ui(secrets["viewer"])


@pytest.fixture
def key_result(app, clock) -> int:
    """An objective with one key result; its id (flags must serve one)."""
    state: AppState = app.extensions["flagsvc"]
    change = Change(SYSTEM, clock(), "ui-test-setup")
    with state.db.write() as session:
        objective = okrs.create_objective(
            session, change, {"title": "Faster checkout", "period": "2026-Q4", "owner": "payments"}
        )
        kr = okrs.create_key_result(
            session,
            change,
            objective.id,
            {
                "title": "Checkout conversion",
                "metric": "conversion",
                "baseline": 0.31,
                "target": 0.36,
                "unit": "ratio",
            },
        )
        return kr.id


def html(response: Any) -> str:
    """The page's text with entities decoded (``'`` arrives as ``&#39;``)."""
    return unescape(response.get_data(as_text=True))
