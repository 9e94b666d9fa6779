"""Sign-in into a signed session, re-checked on every request; sign-out; where it leads."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import select

from flagsvc.services import credentials
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Change
from flagsvc.storage.models import UiSession
from tests.ui.conftest import UiClient
from tests.ui.conftest import html


def test_sign_in__valid_token__session_holds_who_not_the_secret(app, secrets):
    browser = UiClient(app.test_client(), None)
    browser.get("/ui/sign-in")
    response = browser.post("/ui/sign-in", {"token": secrets["marketing"]})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/ui/")
    with browser.client.session_transaction() as session:
        assert secrets["marketing"] not in repr(dict(session))
    assert "marketing-token" in html(browser.get("/ui/flags"))
    cookie = browser.client.get_cookie("session")
    assert secrets["marketing"] not in cookie.value
    assert cookie.http_only and cookie.same_site == "Lax"
    assert timedelta(hours=11) < cookie.expires - datetime.now(UTC) <= timedelta(hours=12)


def test_sign_in__unknown_token__401_with_reason_and_no_session(ui):
    browser = ui(None)
    browser.get("/ui/sign-in")
    response = browser.post("/ui/sign-in", {"token": "fst_not-a-real-token"})
    assert response.status_code == 401
    assert "unknown or has been revoked" in html(response)
    assert browser.get("/ui/flags").status_code == 303


def test_sign_in__sdk_key__refused(ui, secrets):
    browser = ui(None)
    browser.get("/ui/sign-in")
    response = browser.post("/ui/sign-in", {"token": secrets["sdk:production"]})
    assert response.status_code == 401
    assert "SDK keys cannot sign in" in html(response)


def test_sign_in__empty_token__asks_for_it(ui):
    browser = ui(None)
    browser.get("/ui/sign-in")
    response = browser.post("/ui/sign-in", {"token": "  "})
    assert response.status_code == 401
    assert "Enter your token" in html(response)


def test_sign_in__without_csrf_token__400(ui, secrets):
    browser = ui(None)
    response = browser.post("/ui/sign-in", {"token": secrets["admin"]}, csrf=False)
    assert response.status_code == 400


def test_any_page__not_signed_in__redirects_to_sign_in_and_back(ui, secrets):
    browser = ui(None)
    response = browser.get("/ui/cohorts?x=1")
    assert response.status_code == 303
    assert "/ui/sign-in?next=/ui/cohorts?x%3D1" in response.headers["Location"]
    browser.get(response.headers["Location"])
    signed_in = browser.post("/ui/sign-in", {"token": secrets["viewer"], "next": "/ui/cohorts"})
    assert signed_in.headers["Location"] == "/ui/cohorts"


def test_sign_in__next_outside_the_ui__ignored(ui, secrets):
    browser = ui(None)
    for target in ("https://evil.example/ui/", "//evil.example/ui/", "/api/v1/tokens"):
        browser.get("/ui/sign-in")  # each sign-in starts a fresh session and CSRF token
        response = browser.post("/ui/sign-in", {"token": secrets["viewer"], "next": target})
        assert response.headers["Location"] == "/ui/", target


@pytest.mark.parametrize(
    ("role", "landing"),
    [("admin", "/ui/flags"), ("engineer", "/ui/flags"), ("marketing", "/ui/readiness"),
     ("viewer", "/ui/okrs")],
)  # fmt: skip
def test_home__each_role__lands_where_its_work_is(ui, secrets, role, landing):
    response = ui(secrets[role]).get("/ui/")
    assert response.status_code == 303 and response.headers["Location"] == landing


def test_session__token_revoked__signed_out_at_next_click(app, clock, ui, secrets):
    browser = ui(secrets["engineer"])
    assert browser.get("/ui/flags").status_code == 200
    state = app.extensions["flagsvc"]
    with state.db.write() as session:
        token = next(t for t in credentials.list_tokens(session) if t.name == "engineer-token")
        credentials.revoke_token(session, Change(SYSTEM, clock(), "revoke"), token.id)
    response = browser.get("/ui/flags")
    assert response.status_code == 303
    assert "/ui/sign-in" in response.headers["Location"]


def test_sign_out__ends_the_session(ui_admin):
    assert ui_admin.get("/ui/flags").status_code == 200
    response = ui_admin.post("/ui/sign-out")
    assert response.status_code == 303
    assert ui_admin.get("/ui/flags").status_code == 303


def test_sign_out__a_copy_of_the_cookie_taken_before__loads_no_page_posts_no_form(
    app, ui_admin, admin
):
    # Given a copy of the session cookie (and the form's CSRF token) that works,
    assert ui_admin.get("/ui/okrs").status_code == 200
    thief = app.test_client()
    thief.set_cookie("session", ui_admin.client.get_cookie("session").value)
    csrf = ui_admin.csrf
    assert thief.get("/ui/flags").status_code == 200
    # When its owner signs out,
    assert ui_admin.post("/ui/sign-out").status_code == 303
    # Then the copy is signed out too: no page, and its form changes nothing.
    assert thief.get("/ui/flags").status_code == 303
    objective = {"csrf_token": csrf, "title": "Stolen", "period": "2026-Q4", "owner": "x"}
    posted = thief.post("/ui/okrs/objectives", data=objective)
    assert posted.status_code == 303 and "/ui/sign-in" in posted.headers["Location"]
    assert admin.get("/api/v1/objectives").json["items"] == []


def test_session__cookie_holds_only_a_session_id_stored_hashed(app, ui_admin):
    with ui_admin.client.session_transaction() as cookie:
        sid = cookie["sid"]
        assert set(cookie) <= {"sid", "csrf_token", "_permanent"}
    with app.extensions["flagsvc"].db.read() as session:
        stored = session.scalars(select(UiSession.session_hash)).all()
    assert sid not in stored and len(stored) == 1


def test_sign_in__again__each_browser_its_own_session(ui, secrets):
    first, second = ui(secrets["admin"]), ui(secrets["admin"])
    assert first.post("/ui/sign-out").status_code == 303
    assert second.get("/ui/flags").status_code == 200  # signing out one ends only that one
    assert first.get("/ui/flags").status_code == 303


def test_layout__shows_name_role_and_landmarks(ui_marketing):
    page = html(ui_marketing.get("/ui/flags"))
    assert "marketing-token" in page
    assert "role-marketing" in page
    assert '<main id="main"' in page
    assert '<nav aria-label="Main">' in page
    assert 'class="skip-link" href="#main"' in page
    assert '<html lang="en">' in page


# --- the auth-failure limit (flagsvc.services.auth_failures) ------------------------------

LIMIT = 3
BAD_TOKEN = "fst_" + "x" * 43


@pytest.mark.parametrize("app_config", [{"auth_failure_limit": LIMIT}])
def test_sign_in__failures_over_limit__429_page_with_retry_after(ui, secrets):
    browser = ui(None)
    browser.get("/ui/sign-in")
    for _ in range(LIMIT):
        assert browser.post("/ui/sign-in", {"token": BAD_TOKEN}).status_code == 401
    response = browser.post("/ui/sign-in", {"token": secrets["admin"]})
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    assert browser.get("/ui/flags").status_code == 303  # not signed in


@pytest.mark.parametrize("app_config", [{"auth_failure_limit": LIMIT}])
def test_sign_in__empty_token__not_counted(ui):
    browser = ui(None)
    browser.get("/ui/sign-in")
    for _ in range(2 * LIMIT):
        assert browser.post("/ui/sign-in", {"token": " "}).status_code == 401
    assert browser.post("/ui/sign-in", {"token": BAD_TOKEN}).status_code == 401
