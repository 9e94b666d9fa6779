"""The admin area: tokens, environments and their SDK keys (admins only, every change audited).

The same service calls as ``/api/v1/tokens`` and ``/api/v1/environments[/…/sdk-keys]``,
checked by the same schemas. A new token or SDK key is shown once, in the answer to its
POST (201), never through a redirect: a flash message travels in the session cookie,
which is signed, not secret. This is the one form that does not redirect after success;
``ui.js`` replaces the history entry with the admin page's URL, so a reload shows the
page without re-sending the form. Revoking an SDK key is announced after the commit, as
the API does, so every instance refuses the key at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import redirect
from flask import request
from flask import url_for
from werkzeug.wrappers import Response

from flagsvc.domain.errors import DomainError
from flagsvc.domain.roles import Permission
from flagsvc.domain.roles import Role
from flagsvc.services import credentials
from flagsvc.services import environments
from flagsvc.ui import bp
from flagsvc.ui import refusals
from flagsvc.ui.auth import change
from flagsvc.ui.auth import current_user
from flagsvc.ui.auth import permission_required
from flagsvc.ui.forms import FormInvalidError
from flagsvc.ui.forms import FormState
from flagsvc.ui.forms import text
from flagsvc.ui.forms import validate
from flagsvc.ui.pages import done
from flagsvc.ui.pages import error_status
from flagsvc.ui.pages import refuse
from flagsvc.ui.pages import render
from flagsvc.ui.refusals import Refusal
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.shapes.environments import EnvironmentCreateSchema
from flagsvc.web.shapes.tokens import TokenCreateSchema


@dataclass(frozen=True, slots=True)
class Created:
    """A credential just made: what it is, and its secret (shown in this answer only)."""

    what: str
    secret: str


ROLE_OPTIONS = [
    (Role.ENGINEER.value, "engineer: flags, cohorts, stages, OKRs"),
    (Role.MARKETING.value, "marketing: readiness and launches"),
    (Role.VIEWER.value, "viewer: reads everything (leaders, auditors)"),
    (Role.ADMIN.value, "admin: everything, tokens and environments too"),
]


@bp.get("/admin")
@permission_required(Permission.MANAGE_TOKENS)
def admin() -> Any:
    """Tokens, environments and SDK keys on one page."""
    refused = refusals.take()
    if refused is not None:
        return _admin_page(refused.form, refused.status, refused.problem)
    return _admin_page(FormState(), 200)


def _refused(refusal: Refusal, anchor: str | None = None) -> Any:
    """A refused admin form back on the admin page (post/redirect/get)."""

    def in_place(shown: Refusal) -> Any:
        return _admin_page(shown.form, shown.status, shown.problem)

    return refuse(refusal, "ui.admin", in_place, _anchor=anchor)


@bp.get("/sdk-keys")
def sdk_keys_moved() -> Response:
    """The SDK keys moved into the admin area (links and bookmarks keep working)."""
    return redirect(url_for("ui.admin", _anchor="environments"), 301)


def _admin_page(
    form: FormState, status: int, problem: str | None = None, created: Created | None = None
) -> Any:
    with db().read() as session:
        envs = environments.list_environments(session)
        return render(
            "admin.html",
            status,
            section="ui.admin",
            form=form,
            problem=problem,
            tokens=credentials.list_tokens(session),
            environments=envs,
            sdk_keys={env.key: credentials.list_sdk_keys(session, env.key) for env in envs},
            role_options=ROLE_OPTIONS,
            created=created,
            me=current_user().token_id,
        )


@bp.post("/admin/tokens")
@permission_required(Permission.MANAGE_TOKENS)
def token_create() -> Any:
    """Create a token; its secret is shown once on the admin page."""
    data = {"name": text(request.form, "name"), "role": text(request.form, "role")}
    try:
        fields = validate(TokenCreateSchema(), data, {})
        with db().write() as session:
            token, secret = credentials.create_token(
                session, change(), fields["name"], Role(fields["role"])
            )
    except FormInvalidError as error:
        return _refused(Refusal(FormState("token", request.form, error.errors), 422))
    except DomainError as error:  # a name already taken
        errors = {getattr(error, "field", None) or "name": [error.message]}
        return _refused(Refusal(FormState("token", request.form, errors), error_status(error)))
    what = f"Token “{token.name}” ({token.role})"
    return _admin_page(FormState(), 201, created=Created(what, secret))


@bp.post("/admin/tokens/<int:token_id>/revoke")
@permission_required(Permission.MANAGE_TOKENS)
def token_revoke(token_id: int) -> Any:
    """Revoke a token: it signs nothing in any more (a browser using it is signed out)."""
    try:
        with db().write() as session:
            token = credentials.revoke_token(session, change(), token_id)
    except DomainError as error:
        return _refused(Refusal(FormState(), error_status(error), error.message))
    return done(f"Token “{token.name}” revoked.", "ui.admin", _anchor="tokens")


@bp.post("/admin/environments")
@permission_required(Permission.MANAGE_ENVIRONMENTS)
def environment_create() -> Any:
    """Create an environment; every flag starts there dark."""
    form = request.form
    data = {"key": text(form, "key"), "name": text(form, "name"), "gated": "gated" in form}
    try:
        fields = validate(EnvironmentCreateSchema(), data, {})
        with db().write() as session:
            env = environments.create_environment(
                session, change(), fields["key"], fields["name"], fields["gated"]
            )
    except FormInvalidError as error:
        return _refused(Refusal(FormState("environment", form, error.errors), 422))
    except DomainError as error:
        errors = {getattr(error, "field", None) or "key": [error.message]}
        return _refused(Refusal(FormState("environment", form, errors), error_status(error)))
    gated = "gated: general rollout there waits for readiness" if env.gated else "not gated"
    return done(f"Environment {env.name} created ({gated}); every flag is off there.",
                "ui.admin", _anchor=f"environment-{env.key}")  # fmt: skip


@bp.post("/admin/environments/<env>/sdk-keys")
@permission_required(Permission.MANAGE_ENVIRONMENTS)
def sdk_key_create(env: str) -> Any:
    """Create an SDK key for ``env``; it is shown once on the admin page."""
    try:
        with db().write() as session:
            _key, secret = credentials.create_sdk_key(session, change(), env)
    except DomainError as error:
        return _refused(Refusal(FormState(), error_status(error), error.message))
    return _admin_page(FormState(), 201, created=Created(f"SDK key for {env}", secret))


@bp.post("/admin/environments/<env>/sdk-keys/<int:key_id>/revoke")
@permission_required(Permission.MANAGE_ENVIRONMENTS)
def sdk_key_revoke(env: str, key_id: int) -> Any:
    """Revoke an SDK key: every instance refuses it within a second and ends its streams."""
    try:
        with db().write() as session:
            key = credentials.revoke_sdk_key(session, change(), env, key_id)
    except DomainError as error:
        return _refused(Refusal(FormState(), error_status(error), error.message))
    state().revocations.announce(key.id)  # after the commit, as the API does
    return done(f"SDK key {key.prefix}… revoked in {env}.", "ui.admin",
                _anchor=f"environment-{env}")  # fmt: skip
