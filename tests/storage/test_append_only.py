"""The audit table at the database: appends only, whatever code runs the statement."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError


def _events(app) -> int:
    with app.extensions["flagsvc"].db.read() as session:
        return int(session.scalar(text("SELECT count(*) FROM audit_events")))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1",
        "UPDATE audit_events SET hash = prev_hash",
        "DELETE FROM audit_events WHERE seq = 1",
        "DELETE FROM audit_events",
    ],
)
def test_audit_events__update_or_delete__refused_by_the_database(app, statement):
    before = _events(app)
    assert before > 0  # the default environments' events
    with pytest.raises(DBAPIError, match="append-only"), app.extensions["flagsvc"].db.write() as s:
        s.execute(text(statement))
    assert _events(app) == before


def test_audit_events__insert__still_allowed_and_the_chain_grows(admin, app):
    before = _events(app)
    assert admin.post("/api/v1/environments", json={"key": "qa", "name": "QA"}).status_code == 201
    assert _events(app) == before + 1
