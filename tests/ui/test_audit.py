"""The audit page: filters, chain verification, CSV export under the session."""

from __future__ import annotations

import csv
import io

from tests.ui.conftest import html


def _some_history(ui_engineer, key_result):
    ui_engineer.post(
        "/ui/flags",
        {"key": "f1", "name": "F1", "flow_item": "feature", "key_result_id": str(key_result)},
    )
    ui_engineer.post("/ui/flags/f1/environments/staging/stage", {"stage": "early_access"})


def test_audit_log__lists_events_with_actor_and_change(ui_engineer, ui_viewer, key_result):
    _some_history(ui_engineer, key_result)
    page = html(ui_viewer.get("/ui/audit"))
    assert "flag.created" in page and "flag.stage_changed" in page and "engineer-token" in page
    assert '"stage": "early_access"' in page


def test_audit_log__filters(ui_engineer, key_result):
    _some_history(ui_engineer, key_result)
    page = html(ui_engineer.get("/ui/audit?action=flag.stage_changed&flag=f1"))
    assert "flag.stage_changed" in page and "<code>flag.created</code>" not in page
    assert "No events match" in html(ui_engineer.get("/ui/audit?actor=nobody"))
    assert "flag.created" in html(
        ui_engineer.get("/ui/audit?since=2026-10-01T08:00&until=2026-10-01T10:00")
    )


def test_audit_log__bad_time_range__422_keeps_filters(ui_viewer):
    response = ui_viewer.get("/ui/audit?since=2026-10-02T00:00&until=2026-10-01T00:00&actor=me")
    assert response.status_code == 422
    page = html(response)
    assert "Must be later than since" in page and 'value="me"' in page


def test_audit_verify__intact_chain(ui_engineer, key_result):
    _some_history(ui_engineer, key_result)
    page = html(ui_engineer.get("/ui/audit/verify"))
    assert "Chain intact" in page and "events checked" in page


def test_audit_verify__again__continues_from_the_last_verified_event(ui_engineer, key_result):
    _some_history(ui_engineer, key_result)
    ui_engineer.get("/ui/audit/verify")
    page = html(ui_engineer.get("/ui/audit/verify"))
    assert "Chain intact" in page and "0 events checked, continuing from event" in page


def test_audit_verify_full__admins_only(ui_engineer, ui_admin, key_result):
    _some_history(ui_engineer, key_result)
    assert "Re-verify from the first event" not in html(ui_engineer.get("/ui/audit"))
    assert ui_engineer.get("/ui/audit/verify?full=1").status_code == 403
    assert "Re-verify from the first event" in html(ui_admin.get("/ui/audit"))
    page = html(ui_admin.get("/ui/audit/verify?full=1"))
    assert "Chain intact" in page and "from the first event" in page


def test_audit_export__csv_of_the_filtered_view(ui_engineer, key_result):
    _some_history(ui_engineer, key_result)
    response = ui_engineer.get("/ui/audit/export.csv?flag=f1")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["action"] for r in rows] == ["flag.created", "flag.stage_changed"]
    assert rows[0]["hash"] and rows[0]["actor"] == "engineer-token"
    assert "Export CSV" in html(ui_engineer.get("/ui/audit?flag=f1"))
    assert "/ui/audit/export.csv?flag=f1" in html(ui_engineer.get("/ui/audit?flag=f1"))


def test_audit_export__not_signed_in__redirected(ui):
    assert ui(None).get("/ui/audit/export.csv").status_code == 303
