"""Admin tokens: shown once, stored hashed, revocable."""

from __future__ import annotations

from sqlalchemy import select

from flagsvc.storage.models import ApiToken
from tests.conftest import Caller


def test_token__created__shown_once_never_listed_and_stored_hashed(admin, app):
    created = admin.post("/api/v1/tokens", json={"name": "ci", "role": "viewer"})
    assert created.status_code == 201
    secret = created.json["token"]
    listed = admin.get("/api/v1/tokens").get_data(as_text=True)
    assert secret not in listed and "token_hash" not in listed
    with app.extensions["flagsvc"].db.read() as session:
        hashes = session.scalars(select(ApiToken.token_hash)).all()
    assert secret not in hashes and all(len(h) == 64 for h in hashes)


def test_token__works_until_revoked_then_401(admin, client):
    created = admin.post("/api/v1/tokens", json={"name": "temp", "role": "viewer"}).json
    temp = Caller(client, created["token"])
    assert temp.get("/api/v1/environments").status_code == 200
    revoked = admin.delete(f"/api/v1/tokens/{created['id']}")
    assert revoked.status_code == 200 and revoked.json["revoked_at"]
    assert temp.get("/api/v1/environments").status_code == 401


def test_token__bad_role_and_unknown_id__422_and_404(admin):
    assert admin.post("/api/v1/tokens", json={"name": "x", "role": "root"}).status_code == 422
    assert admin.delete("/api/v1/tokens/999999").status_code == 404


def test_auth__malformed_header__401_with_challenge(anonymous):
    response = anonymous.get("/api/v1/flags", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_token__name_over_its_column__422_naming_name(admin):
    response = admin.post("/api/v1/tokens", json={"name": "n" * 150, "role": "viewer"})
    assert response.status_code == 422
    assert "name" in response.json["errors"]["json"]
    assert (
        admin.post("/api/v1/tokens", json={"name": "n" * 100, "role": "viewer"}).status_code == 201
    )


def test_token__name_taken__409_naming_name_even_when_the_other_is_revoked(admin):
    first = admin.post("/api/v1/tokens", json={"name": "deploy-bot", "role": "engineer"}).json
    again = admin.post("/api/v1/tokens", json={"name": "deploy-bot", "role": "viewer"})
    assert again.status_code == 409
    assert again.json["errors"]["json"] == {"name": ["token 'deploy-bot' already exists"]}
    admin.delete(f"/api/v1/tokens/{first['id']}")
    assert (
        admin.post("/api/v1/tokens", json={"name": "deploy-bot", "role": "viewer"}).status_code
        == 409
    )
