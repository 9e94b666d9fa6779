"""The audit log through HTTP: filters, paging, exports, verification, tampering."""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import text

from flagsvc.services import audit_verification
from tests.tamper import around_triggers


def _make_events(admin, count: int) -> None:
    for index in range(count):
        response = admin.post("/api/v1/environments", json={"key": f"env-{index}", "name": "E"})
        assert response.status_code == 201


def test_audit__paged__every_event_once_in_order(admin, viewer):
    _make_events(admin, 7)
    seen, cursor = [], None
    while True:
        query = "/api/v1/audit?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = viewer.get(query).json
        seen += [event["seq"] for event in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == list(range(1, len(seen) + 1))


def test_audit__filter_by_actor_and_action__only_matches(admin, viewer):
    _make_events(admin, 2)
    body = viewer.get("/api/v1/audit?actor=admin-token&action=environment.created").json
    assert [e["entity_key"] for e in body["items"]] == ["env-0", "env-1"]
    assert all(e["actor_role"] == "admin" for e in body["items"])


def test_audit__request_id__recorded_from_header(admin, viewer):
    admin.post(
        "/api/v1/environments", json={"key": "qa", "name": "QA"}, headers={"X-Request-ID": "req-42"}
    )
    event = viewer.get("/api/v1/audit?action=environment.created&actor=admin-token").json["items"][
        0
    ]
    assert event["request_id"] == "req-42"


def test_audit__csv_and_ndjson_exports__hold_every_event(admin, viewer):
    _make_events(admin, 3)
    total = len(viewer.get("/api/v1/audit?limit=500").json["items"])
    rows = list(
        csv.DictReader(io.StringIO(viewer.get("/api/v1/audit?format=csv").get_data(as_text=True)))
    )
    lines = viewer.get("/api/v1/audit?format=ndjson").get_data(as_text=True).splitlines()
    assert len(rows) == len(lines) == total
    assert json.loads(lines[-1])["seq"] == int(rows[-1]["seq"]) == total


def test_audit_verify__event_altered__names_first_broken_seq(app, admin, viewer):
    _make_events(admin, 3)
    with app.extensions["flagsvc"].db.write() as session:
        around_triggers(session)
        session.execute(text("UPDATE audit_events SET after = NULL WHERE seq = 4"))
    report = viewer.get("/api/v1/audit/verify").json
    assert report["valid"] is False and report["first_broken_seq"] == 4
    assert "altered" in report["reason"]


def test_audit_verify__edit_before_the_checkpoint__only_the_full_check_finds_it(app, admin, viewer):
    # Decision: a reader's check continues from the last verified event (cheap); an
    # edit behind it that left the stored hashes alone is the full check's job (admins).
    _make_events(admin, 3)
    assert viewer.get("/api/v1/audit/verify").json["valid"] is True
    with app.extensions["flagsvc"].db.write() as session:
        around_triggers(session)
        session.execute(text("UPDATE audit_events SET after = NULL WHERE seq = 4"))
    assert viewer.get("/api/v1/audit/verify").json["valid"] is True
    full = admin.get("/api/v1/audit/verify/full").json
    assert full["valid"] is False and full["first_broken_seq"] == 4


def test_audit_verify__event_removed__reports_the_gap(app, admin, viewer):
    _make_events(admin, 3)
    with app.extensions["flagsvc"].db.write() as session:
        around_triggers(session)
        session.execute(text("DELETE FROM audit_events WHERE seq = 3"))
    report = viewer.get("/api/v1/audit/verify").json
    assert report["valid"] is False and report["first_broken_seq"] == 4
    assert "removed" in report["reason"]


def test_audit__bad_filters__422_names_fields(viewer):
    response = viewer.get("/api/v1/audit?since=yesterday&limit=0&format=xml&bogus=1")
    assert response.status_code == 422
    assert set(response.json["errors"]["query"]) == {"since", "limit", "format", "bogus"}


def test_audit__naive_datetime__422(viewer):
    assert viewer.get("/api/v1/audit?since=2026-01-01T00:00:00").status_code == 422


# --- verification: from the checkpoint for readers, the whole chain for admins ----------


def test_audit_verify__again__checks_only_what_was_added_since(admin, viewer):
    _make_events(admin, 3)
    first = viewer.get("/api/v1/audit/verify").json
    assert first["valid"] and first["complete"] and first["verified_from"] == 0
    _make_events_named(admin, "later", 2)
    again = viewer.get("/api/v1/audit/verify").json
    assert again["valid"] and again["events_checked"] == 2
    assert again["verified_from"] == first["verified_seq"]
    assert again["verified_seq"] == first["verified_seq"] + 2


def test_audit_verify_full__admins_only_and_walks_everything(admin, engineer, marketing, viewer):
    _make_events(admin, 3)
    viewer.get("/api/v1/audit/verify")
    for caller in (engineer, marketing, viewer):
        assert caller.get("/api/v1/audit/verify/full").status_code == 403
    full = admin.get("/api/v1/audit/verify/full").json
    assert full["valid"] and full["verified_from"] == 0
    assert full["events_checked"] == full["verified_seq"]


def test_audit_verify__over_its_limit__stops_then_continues(admin, viewer, monkeypatch):
    monkeypatch.setattr(audit_verification, "INCREMENTAL_LIMIT", 4)
    _make_events(admin, 6)
    first = viewer.get("/api/v1/audit/verify").json
    assert first["valid"] and not first["complete"] and first["events_checked"] == 4
    second = viewer.get("/api/v1/audit/verify").json
    assert second["verified_from"] == 4 and second["events_checked"] == 4


def test_audit_verify__events_removed_from_the_end__found_from_the_checkpoint(app, admin, viewer):
    _make_events(admin, 3)
    verified = viewer.get("/api/v1/audit/verify").json["verified_seq"]
    with app.extensions["flagsvc"].db.write() as session:
        around_triggers(session)
        session.execute(text("DELETE FROM audit_events WHERE seq >= :s"), {"s": verified - 1})
    report = viewer.get("/api/v1/audit/verify").json
    assert report["valid"] is False and "removed from the end" in report["reason"]
    assert admin.get("/api/v1/audit/verify/full").json["valid"] is False


def test_audit_head__newest_seq_and_hash(admin, viewer, app):
    _make_events(admin, 2)
    head = viewer.get("/api/v1/audit/head").json
    with app.extensions["flagsvc"].db.read() as session:
        newest = session.execute(
            text("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        ).one()
    assert (head["seq"], head["hash"], head["sealed"]) == (newest.seq, newest.hash, False)


def test_metrics__export_the_audit_head(admin, client):
    _make_events(admin, 2)
    head = admin.get("/api/v1/audit/head").json
    metrics = client.get("/metrics").get_data(as_text=True)
    values = {
        line.split()[0]: float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("flagsvc_audit_head")
    }
    assert values["flagsvc_audit_head_seq"] == head["seq"]
    assert values["flagsvc_audit_head_hash_prefix"] == int(head["hash"][:13], 16)


def _make_events_named(admin, prefix: str, count: int) -> None:
    for index in range(count):
        response = admin.post(
            "/api/v1/environments", json={"key": f"{prefix}-{index}", "name": "E"}
        )
        assert response.status_code == 201


def test_audit_verify__broken__the_next_call_starts_at_the_break_not_the_beginning(
    app, admin, viewer
):
    _make_events(admin, 5)
    with app.extensions["flagsvc"].db.write() as session:
        around_triggers(session)
        session.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 6"))
    first = viewer.get("/api/v1/audit/verify").json
    again = viewer.get("/api/v1/audit/verify").json
    assert (first["valid"], first["first_broken_seq"], first["events_checked"]) == (False, 6, 5)
    assert (again["valid"], again["first_broken_seq"], again["events_checked"]) == (False, 6, 0)
    assert again["verified_from"] == 5
