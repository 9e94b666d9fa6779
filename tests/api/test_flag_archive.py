"""Archiving flags through the API: only a flag that serves nobody; left out of lists;
its state frozen until restored; both audited."""

from __future__ import annotations

from tests.conftest import create_flag

FLAG = "/api/v1/flags/old"


def _move(engineer, env: str, stage: str):
    return engineer.post(f"{FLAG}/environments/{env}/stage", json={"stage": stage})


def test_archive__released_somewhere__409_naming_it(engineer):
    create_flag(engineer, "old")
    assert _move(engineer, "production", "early_access").status_code == 200
    response = engineer.post(f"{FLAG}/archive")
    assert response.status_code == 409
    assert "production (early access)" in response.json["message"]


def test_archive__off_and_retired__listed_apart_frozen_then_restored(engineer, viewer):
    create_flag(engineer, "old")
    create_flag(engineer, "kept")
    _move(engineer, "staging", "retired")
    archived = engineer.post(f"{FLAG}/archive")
    assert archived.status_code == 200 and archived.json["archived_at"]
    assert [f["key"] for f in viewer.get("/api/v1/flags").json["items"]] == ["kept"]
    assert [f["key"] for f in viewer.get("/api/v1/flags?archived=true").json["items"]] == ["old"]
    assert _move(engineer, "staging", "early_access").status_code == 409
    assert engineer.post(f"{FLAG}/archive").status_code == 200  # again: nothing recorded
    assert engineer.post(f"{FLAG}/unarchive").json["archived_at"] is None
    assert _move(engineer, "staging", "early_access").status_code == 200
    actions = [e["action"] for e in viewer.get("/api/v1/audit?flag=old").json["items"]]
    assert actions.count("flag.archived") == 1 and actions.count("flag.unarchived") == 1


def test_archive__viewer__403(engineer, viewer):
    create_flag(engineer, "old")
    assert viewer.post(f"{FLAG}/archive").status_code == 403
