"""Environments and SDK keys through HTTP."""

from __future__ import annotations


def test_environments__after_init__three_exist_production_gated(viewer):
    response = viewer.get("/api/v1/environments")
    assert response.status_code == 200
    assert {e["key"]: e["gated"] for e in response.json} == {
        "development": False,
        "staging": False,
        "production": True,
    }


def test_create_environment__duplicate_key__409_names_key(admin):
    assert admin.post("/api/v1/environments", json={"key": "qa", "name": "QA"}).status_code == 201
    response = admin.post("/api/v1/environments", json={"key": "qa", "name": "QA"})
    assert response.status_code == 409
    assert "key" in response.json["errors"]["json"]


def test_sdk_key__created__shown_once_and_stored_hashed(admin, app):
    response = admin.post("/api/v1/environments/staging/sdk-keys")
    assert response.status_code == 201
    secret = response.json["sdk_key"]
    from sqlalchemy import select

    from flagsvc.storage.models import SdkKey

    with app.extensions["flagsvc"].db.read() as session:
        stored = session.scalars(select(SdkKey.key_hash)).all()
    assert secret not in stored
    assert all(len(h) == 64 for h in stored)
