"""CSRF on every UI form (never on the JSON API) and the UI's security headers."""

from __future__ import annotations

import pytest

from tests.ui.conftest import html

HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@pytest.mark.parametrize(
    "path",
    [
        "/ui/sign-in",
        "/ui/flags",
        "/ui/static/ui.css",
        "/ui/static/vendor/htmx.min.js",
        "/ui/no-such-page",
    ],
)
def test_ui_response__any__sends_security_headers(ui_viewer, path):
    response = ui_viewer.get(path)
    response.close()  # static files are streamed from disk
    assert response.status_code in (200, 404)
    for name, value in HEADERS.items():
        assert response.headers[name] == value
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_ui_page__never_inline_script_or_style(ui_admin, key_result):
    ui_admin.post(
        "/ui/flags",
        {"key": "f1", "name": "F1", "flow_item": "feature", "key_result_id": str(key_result)},
    )
    for path in (
        "/ui/flags",
        "/ui/flags/f1",
        "/ui/cohorts/new",
        "/ui/okrs",
        "/ui/audit",
        "/ui/timing",
    ):
        page = html(ui_admin.get(path))
        assert "<script>" not in page and "style=" not in page and "<style" not in page, path
        assert " on" + "click=" not in page


def test_ui_page__not_cached(ui_viewer):
    assert ui_viewer.get("/ui/flags").headers["Cache-Control"] == "no-store"


def test_unknown_ui_page__html_404(ui_viewer):
    response = ui_viewer.get("/ui/nothing/here")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "There is no such page" in html(response)


def test_api__no_ui_headers_and_no_csrf_needed(engineer):
    response = engineer.post(
        "/api/v1/objectives", json={"title": "T", "period": "2026-Q4", "owner": "team"}
    )
    assert response.status_code == 201
    assert "Content-Security-Policy" not in response.headers


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/ui/flags", {"key": "x", "name": "X", "flow_item": "feature", "key_result_id": "1"}),
        ("/ui/flags/x/environments/production/stage", {"stage": "early_access"}),
        ("/ui/flags/x/readiness/docs", {"done": "true"}),
        ("/ui/cohorts", {"key": "c", "name": "C"}),
        ("/ui/okrs/objectives", {"title": "T", "period": "2026", "owner": "o"}),
        ("/ui/sign-out", {}),
    ],
)
def test_ui_form__without_csrf_token__400_and_nothing_changes(ui_admin, path, data):
    response = ui_admin.post(path, data, csrf=False)
    assert response.status_code == 400
    assert "security token is missing or out of date" in html(response)
    assert ui_admin.get("/ui/flags").status_code == 200  # still signed in: sign-out was refused


def test_ui_form__csrf_token_of_another_session__400(ui, secrets):
    mallory = ui(secrets["viewer"])
    victim = ui(secrets["admin"])
    forged = {"title": "Forged", "period": "2026", "owner": "o", "csrf_token": mallory.csrf_token()}
    response = victim.client.post("/ui/okrs/objectives", data=forged)
    assert response.status_code == 400
    assert "Forged" not in html(victim.get("/ui/okrs"))
