"""SDK keys per environment, for admins: list (prefix, created, last used), create, revoke.

The same service calls and permission as ``/api/v1/environments/<env>/sdk-keys``. A new
key is shown once, in the answer to its POST (never through a redirect and a flash
message: those travel in the session cookie, which is signed, not secret). A revoked
key is announced like the API's, so every instance refuses it within a second.
"""

from __future__ import annotations

from typing import Any

from flagsvc.api.context import db
from flagsvc.api.context import state
from flagsvc.domain.roles import Permission
from flagsvc.services import credentials
from flagsvc.services import environments
from flagsvc.ui import bp
from flagsvc.ui.auth import change
from flagsvc.ui.auth import permission_required
from flagsvc.ui.pages import done
from flagsvc.ui.pages import render


@bp.get("/sdk-keys")
@permission_required(Permission.MANAGE_ENVIRONMENTS)
def sdk_keys() -> Any:
    """Every environment's SDK keys, revoked ones too."""
    return _page()


@bp.post("/sdk-keys/<env>")
@permission_required(Permission.MANAGE_ENVIRONMENTS)
def sdk_key_create(env: str) -> Any:
    """Create a key and show it, this once."""
    with db().write() as session:
        key, secret = credentials.create_sdk_key(session, change(), env)
    return _page(created=(env, key.prefix, secret), status=201)


@bp.post("/sdk-keys/<env>/<int:key_id>/revoke")
@permission_required(Permission.MANAGE_ENVIRONMENTS)
def sdk_key_revoke(env: str, key_id: int) -> Any:
    """Revoke a key: every instance refuses it within a second and ends its streams."""
    with db().write() as session:
        key = credentials.revoke_sdk_key(session, change(), env, key_id)
    state().revocations.announce(key.id)
    return done(f"SDK key {key.prefix}… revoked in {env}.", "ui.sdk_keys")


def _page(created: tuple[str, str, str] | None = None, status: int = 200) -> Any:
    with db().read() as session:
        by_environment = [
            (environment, credentials.list_sdk_keys(session, environment.key))
            for environment in environments.list_environments(session)
        ]
    return render("admin/sdk_keys.html", status, section="ui.sdk_keys",
                  by_environment=by_environment, created=created)  # fmt: skip
