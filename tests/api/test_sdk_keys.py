"""SDK keys through HTTP: listed with prefix and times, revoked at once, use noted sparingly."""

from __future__ import annotations

from sqlalchemy import event

from flagsvc.domain.actions import Action
from tests.conftest import Caller

KEYS = "/api/v1/environments/{env}/sdk-keys"


def _create(admin: Caller, env: str = "staging") -> dict:
    response = admin.post(KEYS.format(env=env))
    assert response.status_code == 201, response.json
    return response.json


def test_sdk_keys__listed__prefix_times_newest_first_never_the_key(admin, client, clock):
    first, second = _create(admin), _create(admin)
    Caller(client, second["sdk_key"]).get("/sdk/v1/snapshot")
    listed = admin.get(KEYS.format(env="staging"))
    assert listed.status_code == 200
    assert [k["id"] for k in listed.json[:2]] == [second["id"], first["id"]]  # then the fixture's
    newest = listed.json[0]
    assert second["sdk_key"].startswith(newest["prefix"]) and newest["prefix"] != first["prefix"]
    assert newest["created_at"] and newest["revoked_at"] is None
    assert newest["last_used_at"] == clock().isoformat()
    assert listed.json[1]["last_used_at"] is None
    assert first["sdk_key"] not in listed.get_data(as_text=True)


def test_sdk_key_prefix__tells_keys_of_a_long_environment_apart(admin):
    admin.post("/api/v1/environments", json={"key": "production-eu-west", "name": "EU"})
    prefixes = {_create(admin, "production-eu-west")["prefix"] for _ in range(5)}
    assert len(prefixes) == 5


def test_sdk_key__revoked__refused_at_once_and_audited(admin, client):
    created = _create(admin, "production")
    key = Caller(client, created["sdk_key"])
    assert key.get("/sdk/v1/snapshot").status_code == 200  # now in the 5 s cache
    revoked = admin.delete(f"{KEYS.format(env='production')}/{created['id']}")
    assert revoked.status_code == 200 and revoked.json["revoked_at"]
    assert key.get("/sdk/v1/snapshot").status_code == 401
    events = admin.get("/api/v1/audit", query_string={"action": Action.SDK_KEY_REVOKED}).json[
        "items"
    ]
    assert [(e["entity_key"], e["environment"]) for e in events] == [
        (str(created["id"]), "production")
    ]
    assert events[0]["before"]["revoked_at"] is None and events[0]["after"]["revoked_at"]


def test_sdk_key__revoked_twice__200_one_audit_event(admin):
    created = _create(admin)
    path = f"{KEYS.format(env='staging')}/{created['id']}"
    assert admin.delete(path).status_code == 200
    assert admin.delete(path).status_code == 200
    events = admin.get("/api/v1/audit", query_string={"action": Action.SDK_KEY_REVOKED}).json[
        "items"
    ]
    assert len(events) == 1


def test_sdk_key__revoked_through_another_environment__404_and_still_works(admin, client):
    created = _create(admin, "staging")
    assert admin.delete(f"{KEYS.format(env='production')}/{created['id']}").status_code == 404
    assert admin.delete(f"{KEYS.format(env='staging')}/999999").status_code == 404
    assert admin.get(KEYS.format(env="nope")).status_code == 404
    assert Caller(client, created["sdk_key"]).get("/sdk/v1/snapshot").status_code == 200


def test_sdk_keys__list_and_revoke__admin_only(admin, engineer, marketing, viewer, sdk):
    created = _create(admin)
    for caller in (engineer, marketing, viewer):
        assert caller.get(KEYS.format(env="staging")).status_code == 403
        assert caller.delete(f"{KEYS.format(env='staging')}/{created['id']}").status_code == 403
    assert sdk.get(KEYS.format(env="staging")).status_code == 403


def test_sdk_key_use__many_requests__one_write_a_minute(admin, client, app, clock):
    created = _create(admin)
    key = Caller(client, created["sdk_key"])
    writes: list[str] = []

    def count_writes(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("UPDATE SDK_KEYS"):
            writes.append(statement)

    engine = app.extensions["flagsvc"].db.write_engine
    event.listen(engine, "before_cursor_execute", count_writes)
    try:
        for _ in range(30):
            assert key.get("/sdk/v1/snapshot").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count_writes)
    assert len(writes) == 1
