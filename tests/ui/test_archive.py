"""Archiving a flag: only once it serves nobody; hidden from lists; kept in the audit."""

from __future__ import annotations

import pytest

from tests.ui.conftest import html

FLAG = "/ui/flags/old-banner"


@pytest.fixture
def flag(ui_engineer, key_result):
    ui_engineer.post("/ui/flags", {"key": "old-banner", "name": "Old banner",
                                   "flow_item": "feature", "key_result_id": str(key_result)})  # fmt: skip
    return "old-banner"


def test_archive__live_somewhere__refused_naming_where(ui_engineer, engineer, flag):
    ui_engineer.post(f"{FLAG}/environments/staging/stage", {"stage": "released"})
    assert "still live in Staging: retire it" in html(ui_engineer.get(FLAG))
    response = ui_engineer.post(f"{FLAG}/archive")
    assert response.status_code == 409 and "still reaches people in staging (released)" in html(
        response
    )
    assert engineer.get(f"/api/v1/flags/{flag}").json["archived_at"] is None


def test_archive__serving_nobody__hidden_from_lists_kept_in_audit_restorable(
    ui_engineer, engineer, flag
):
    ui_engineer.post(f"{FLAG}/environments/staging/stage", {"stage": "retired"})
    assert ui_engineer.post(f"{FLAG}/archive").status_code == 303
    assert "Old banner" not in html(ui_engineer.get("/ui/flags"))
    assert "Old banner" in html(ui_engineer.get("/ui/flags?archived=true"))
    assert [f["key"] for f in engineer.get("/api/v1/flags?archived=true").json["items"]] == [flag]
    page = html(ui_engineer.get(FLAG))
    assert "Archived" in page and "Restore the flag" in page
    moved = ui_engineer.post(f"{FLAG}/environments/staging/stage", {"stage": "early_access"})
    assert moved.status_code == 409 and "is archived: restore it" in html(moved)
    assert ui_engineer.post(f"{FLAG}/unarchive").status_code == 303
    assert "Old banner" in html(ui_engineer.get("/ui/flags"))
    actions = [e["action"] for e in engineer.get(f"/api/v1/audit?flag={flag}").json["items"]]
    assert actions[-2:] == ["flag.archived", "flag.unarchived"]


def test_archive__marketing__403(ui_marketing, flag):
    assert ui_marketing.post(f"{FLAG}/archive").status_code == 403
