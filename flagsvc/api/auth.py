"""Bearer authentication and role checks for the admin and SDK APIs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any
from typing import TypeVar

from flask import g
from flask import request

from flagsvc.domain.errors import AuthenticationError
from flagsvc.domain.errors import PermissionDeniedError
from flagsvc.domain.roles import Permission
from flagsvc.domain.roles import allows
from flagsvc.services import credentials
from flagsvc.services.context import Actor
from flagsvc.web import ratelimit
from flagsvc.web.context import db
from flagsvc.web.context import state

View = TypeVar("View", bound=Callable[..., Any])
log = logging.getLogger(__name__)

_AUTH_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]
_AUTH_RESPONSES = {"401": "UNAUTHORIZED", "403": "FORBIDDEN", "429": "TOO_MANY_REQUESTS"}


def bearer_secret() -> str:
    """The token in ``Authorization: Bearer <token>``.

    :raise AuthenticationError: the header is missing or malformed.
    """
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthenticationError("send 'Authorization: Bearer <token>'")
    return secret.strip()


def authenticate() -> Actor:
    """Resolve the caller once per request.

    :raise AuthenticationError: no live token or SDK key matches.
    """
    if "actor" not in g:
        secret = bearer_secret()
        if secret.startswith(credentials.SDK_KEY_PREFIX):
            actor = _sdk_key_actor(secret)
        else:
            actor = _lookup(secret)
        if actor is None:
            raise AuthenticationError("the token is unknown or revoked")
        g.actor = actor
    return g.actor  # type: ignore[no-any-return]


def _lookup(secret: str) -> Actor | None:
    with db().read() as session:
        return credentials.authenticate(session, secret)


def _sdk_key_actor(secret: str) -> Actor | None:
    """The SDK key's actor from the per-process cache; its use noted once a minute."""
    app_state = state()
    app_state.revocations.start()  # from the first SDK request on, hear revocations
    app_state.broker.listen()  # ... and other instances' changes (the 304s' head)
    actor = app_state.sdk_keys.actor(secret, lambda: _lookup(secret))
    key_id = actor.sdk_key_id if actor is not None else None
    if key_id is not None and app_state.sdk_key_use.due(key_id):
        credentials.note_sdk_key_use(db(), key_id, app_state.clock())
    return actor


def _limited_authenticate(channel: str) -> Actor:
    """``authenticate`` behind the auth-failure limit (429 + Retry-After once exceeded).

    Failed guesses are counted per client address; a request whose caller is already
    resolved, or that sent no credential at all, is no guess.
    """
    if "actor" in g:
        return authenticate()
    return ratelimit.authenticated(channel, authenticate)


def requires(permission: Permission) -> Callable[[View], View]:
    """Allow the view only to admin tokens whose role grants ``permission``."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            actor = _limited_authenticate("admin API")
            if actor.role is None:
                raise PermissionDeniedError("SDK keys may only call /sdk/v1")
            if not allows(actor.role, permission):
                raise PermissionDeniedError(
                    f"role {actor.role.value!r} may not {permission.value.replace('_', ' ')}"
                )
            return view(*args, **kwargs)

        _document_auth(guarded)
        return guarded  # type: ignore[return-value]

    return decorate


def requires_sdk_key(view: View) -> View:
    """Allow the view only to SDK keys (scoped to their one environment)."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        actor = _limited_authenticate("SDK API")
        if actor.environment is None:
            raise PermissionDeniedError("this endpoint takes an SDK key, not an admin token")
        return view(*args, **kwargs)

    _document_auth(guarded)
    return guarded  # type: ignore[return-value]


def _document_auth(view: Any) -> None:
    """Tell the OpenAPI document that the operation needs a bearer token."""
    apidoc = dict(getattr(view, "_apidoc", {}))
    manual = dict(apidoc.get("manual_doc", {}))
    # merged, not replaced: the view's own response docs (an export's content types) stay
    manual["responses"] = {**_AUTH_RESPONSES, **manual.get("responses", {})}
    manual["security"] = _AUTH_SECURITY
    apidoc["manual_doc"] = manual
    view._apidoc = apidoc
