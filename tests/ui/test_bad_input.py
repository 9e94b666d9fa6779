"""Bad input in the UI gets a 4xx page, never a 500 (issue 10 §4; the API's in tests/api)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from flagsvc.storage.models import KeyResult
from tests.api.test_bad_input import HUGE
from tests.api.test_bad_input import HUGE_DIGITS
from tests.api.test_bad_input import INT64_PAST
from tests.api.test_bad_input import PERIODS
from tests.api.test_bad_input import forged
from tests.conftest import Caller
from tests.conftest import create_flag
from tests.ui.conftest import html


@pytest.fixture
def listed(admin):
    create_flag(admin, "f1")
    admin.post("/api/v1/cohorts", json={"key": "c1", "name": "C", "rules": []})


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/ui/audit?older={}", "older"),
        ("/ui/audit?newer={}", "newer"),
    ],
)
@pytest.mark.parametrize("position", [INT64_PAST, HUGE])
def test_ui_cursor__forged__422_page(listed, ui_viewer, path, field, position):
    response = ui_viewer.get(path.format(forged(position)))
    assert response.status_code == 422
    assert "not a cursor this" in response.get_data(as_text=True).lower()


@pytest.mark.parametrize("seen", [str(INT64_PAST), "²", HUGE_DIGITS])
def test_ui_forms__forged_seen_head__answered_not_500(listed, ui_engineer, seen):
    """Forms carry the audit head they saw (``seen``); a forged one is ignored."""
    ui_engineer.get("/ui/flags/f1")
    response = ui_engineer.post(
        "/ui/flags/f1/environments/staging/stage", {"stage": "early_access", "seen": seen}
    )
    assert response.status_code in (200, 303, 409, 412, 422)


@pytest.mark.parametrize("period", PERIODS)
def test_ui_timing__period_at_the_calendar_ends__422(listed, ui_viewer, period):
    shown = {k: v.removesuffix("Z").replace("T", " ")[:16] for k, v in period.items()}
    response = ui_viewer.get("/ui/timing", query_string=shown)
    assert response.status_code == 422


def test_ui_rule_value_over_4300_digits__answered_as_text(listed, ui_engineer):
    ui_engineer.get("/ui/cohorts/c1")
    form = {"rule_rows": "1", "rules-0-attribute": "n", "rules-0-op": "eq",
            "rules-0-values": HUGE_DIGITS, "preview_key": "u",
            "preview_attributes": '{"n": ' + HUGE_DIGITS + "}"}  # fmt: skip
    response = ui_engineer.post("/ui/cohorts/preview", form)
    assert response.status_code in (200, 422)


def test_okrs_and_flag_page__stored_hair_target__both_render(app, ui_engineer, key_result, clock):
    """A key result stored with target 5e-324 (progress Infinity) took both pages down."""
    ui_engineer.post("/ui/flags", {"key": "hair", "name": "Hair", "flow_item": "feature",
                                   "key_result_id": str(key_result)})  # fmt: skip
    with app.extensions["flagsvc"].db.write() as session:
        row = session.get(KeyResult, key_result)
        row.baseline, row.target, row.current = 0.0, 5e-324, 1.0
    assert ui_engineer.get("/ui/okrs").status_code == 200
    page = ui_engineer.get("/ui/flags/hair")
    assert page.status_code == 200
    assert "Checkout conversion" in page.get_data(as_text=True)  # the key result, shown


# --- CSV member uploads ------------------------------------------------------------------


def _upload(ui_engineer, content: bytes) -> Any:
    ui_engineer.get("/ui/cohorts/c1")
    return ui_engineer.post("/ui/cohorts/c1/members",
                            {"members_file": (io.BytesIO(content), "m.csv"), "mode": "add"},
                            content_type="multipart/form-data")  # fmt: skip


@pytest.mark.parametrize("content", [b"user_key\ru-1\ru-2\ru-3\r", b"u-1\ru-2\r\nu-3\n"])
def test_members_upload__cr_only_line_endings__parsed(listed, ui_engineer, engineer, content):
    response = _upload(ui_engineer, content)
    assert response.status_code == 303, html(response)
    members = engineer.get("/api/v1/cohorts/c1/members").json["items"]
    assert [m["user_key"] for m in members] == ["u-1", "u-2", "u-3"]


@pytest.mark.parametrize(
    "content",
    [b"u-1\n" + b"x" * (128 * 1024 + 1) + b"\n", b'u-1\n"' + b"x" * (130 * 1024) + b'"\n'],
)
def test_members_upload__field_over_128_kib__422_naming_the_file(listed, ui_engineer, content):
    response = _upload(ui_engineer, content)
    assert response.status_code == 422
    assert "members_file" in response.get_data(as_text=True)


def test_members_upload__unclosed_quote_with_newline__answered(listed, ui_engineer):
    response = _upload(ui_engineer, b'u-1\n"u-2\nu-3\n')
    assert response.status_code in (303, 422)


# --- sign-in ``next`` --------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/ui/flags\r\nSet-Cookie: evil=1",
        "/ui/flags\nLocation: https://evil.example/",
        "/ui/flags\r",
        "/ui/\x00flags",
        "/ui/\tflags",
        "/ui/%0d%0aSet-Cookie:%20evil=1",
    ],
)
def test_sign_in__next_with_control_characters__safe_redirect(ui, secrets, target):
    browser = ui(None)
    browser.get("/ui/sign-in")
    response = browser.post("/ui/sign-in", {"token": secrets["viewer"], "next": target})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert "\r" not in location and "\n" not in location
    assert "evil" not in response.headers.get("Set-Cookie", "")
    assert location.startswith("/ui/")


# --- the variation value (the UI's JSON payload field) -----------------------------------


@pytest.mark.parametrize(
    ("value", "on"),
    [('{"n": ' + HUGE_DIGITS + "}", "0"), ("[" + HUGE_DIGITS + "]", "0"), ("{}", "²")],
)
def test_new_flag__object_value_python_cannot_read__422_at_its_row(
    ui_engineer, key_result, value, on
):
    data = {"key": "cfg", "name": "Cfg", "flow_item": "feature", "key_result_id": str(key_result),
            "value_type": "object", "on_variation": on, "off_variation": "",
            "variations-0-key": "a", "variations-0-value": value,
            "variations-0-description": ""}  # fmt: skip
    response = ui_engineer.post("/ui/flags", data)
    assert response.status_code == 422


# --- CSV exports: no formulas ------------------------------------------------------------

FORMULAS = ('=HYPERLINK("https://evil.example")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1")


def test_audit_exports__cells_starting_a_formula__neutralised(ui_engineer, admin):
    """Token names are free text and the audit's ``actor``: each starts a cell."""
    for n, formula in enumerate(FORMULAS):
        made = admin.post("/api/v1/tokens", json={"name": formula, "role": "engineer"})
        assert made.status_code == 201, made.json
        actor = Caller(admin.client, made.json["token"])
        assert actor.post("/api/v1/cohorts", json={"key": f"c{n}x", "name": "C",
                                                   "rules": []}).status_code == 201  # fmt: skip
    exports = (lambda: ui_engineer.get("/ui/audit/export.csv"),
               lambda: admin.get("/api/v1/audit?format=csv"))  # fmt: skip
    for export in exports:  # one at a time: each streams inside its request
        response = export()
        assert response.status_code == 200
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        actors = {row["actor"] for row in rows}
        assert {"'" + formula for formula in FORMULAS} <= actors, actors
        cells = [cell for row in rows for cell in row.values()]
        assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
