"""Sign in with a token into a server-side session; who is signed in; what their role allows.

The cookie (Flask's signed session) holds a random session id and the CSRF token, never
the secret; ``services.ui_sessions`` keeps the session. Every request loads the session
and its token again, so signing out ends every copy of the cookie, and revoking the
token signs the browser out at its next click, exactly as it stops the API.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from functools import wraps
from typing import Any
from typing import TypeVar
from typing import cast
from urllib.parse import urlsplit

from flask import abort
from flask import g
from flask import redirect
from flask import request
from flask import session
from flask import url_for
from werkzeug.wrappers import Response

from flagsvc.domain.errors import AuthenticationError
from flagsvc.domain.roles import Permission
from flagsvc.domain.roles import Role
from flagsvc.domain.roles import allows
from flagsvc.services import credentials
from flagsvc.services import ui_sessions
from flagsvc.services.auth_failures import TooManyFailuresError
from flagsvc.services.context import Actor
from flagsvc.services.context import Change
from flagsvc.state import system_clock
from flagsvc.ui import bp
from flagsvc.ui.pages import render
from flagsvc.web.context import db
from flagsvc.web.context import request_id
from flagsvc.web.context import state
from flagsvc.web.ratelimit import client_address
from flagsvc.web.ratelimit import limiter

View = TypeVar("View", bound=Callable[..., Any])
PUBLIC_ENDPOINTS = frozenset({"ui.sign_in", "ui.static"})
SESSION_LIFETIME = timedelta(hours=12)
SESSION_ID = "sid"


@dataclass(frozen=True, slots=True)
class UiUser:
    """The person behind the session: their token's id, name and role."""

    token_id: int
    name: str
    role: Role

    def can(self, permission: Permission | str) -> bool:
        """Tell whether the role grants ``permission`` (the API's one table)."""
        return allows(self.role, Permission(permission))


def current_user() -> UiUser:
    """The signed-in user (set by ``require_user`` before every view)."""
    return cast(UiUser, g.ui_user)


def change() -> Change:
    """Who is changing what, now, in which request: the audit's view of a UI write."""
    user = current_user()
    actor = Actor(name=user.name, role=user.role, token_id=user.token_id)
    return Change(actor=actor, at=state().clock(), request_id=request_id())


def require_user() -> Response | None:
    """Load the session's user, or send the browser to sign in (and back afterwards)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    user = _live_user(session.get(SESSION_ID))
    if user is None:
        _forget()
        return redirect(url_for("ui.sign_in", next=request.full_path.rstrip("?")), 303)
    g.ui_user = user
    return None


def permission_required(permission: Permission) -> Callable[[View], View]:
    """Refuse the view (403) to roles that lack ``permission``, as the API does."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if not user.can(permission):
                abort(403, f"Your role ({user.role.value}) may not {_words(permission)}.")
            return view(*args, **kwargs)

        return cast(View, guarded)

    return decorate


def _words(permission: Permission) -> str:
    return permission.value.replace("_", " ")


def _live_user(session_id: object) -> UiUser | None:
    """The user of a live session (not signed out or expired, its token not revoked)."""
    if not isinstance(session_id, str):
        return None
    with db().read() as db_session:
        token = ui_sessions.token_of(db_session, session_id, _now())
    return None if token is None else UiUser(token.id, token.name, Role(token.role))


def _now() -> datetime:
    """Sessions run on the wall clock, like the cookie's own expiry (the app's clock is the
    time changes are recorded at, which tests move by days)."""
    return system_clock()


CONTROL = re.compile(r"[\x00-\x1f\x7f]")
"""Characters a redirect target never holds."""


def _forget() -> None:
    session.pop(SESSION_ID, None)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path inside the UI, never another site.

    Control characters make it the home page: CR/LF would split the ``Location`` header
    (werkzeug refuses it, a 500), and browsers drop tabs and NULs from URLs.
    """
    parts = urlsplit(target or "")
    inside = parts.path.startswith("/ui/") and not parts.scheme and not parts.netloc
    plain = target is not None and "\\" not in target and not CONTROL.search(target)
    return target if target and inside and plain else url_for("ui.home")


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    """Show the sign-in form; on POST, exchange a token for a signed session."""
    if request.method == "GET":
        return render("sign_in.html", next=request.args.get("next", ""))
    secret = request.form.get("token", "").strip()
    try:
        actor = _signing_in(secret)
    except AuthenticationError as error:
        return render("sign_in.html", 401, next=request.form.get("next", ""), error=error.message)
    except TooManyFailuresError as error:
        return _too_many_failures(error)
    if actor.role is None or actor.token_id is None:
        problem = "SDK keys cannot sign in; use an admin, engineer, marketing or viewer token."
        return render("sign_in.html", 401, next=request.form.get("next", ""), error=problem)
    _start_session(actor)
    return redirect(safe_next(request.form.get("next")), 303)


def _signing_in(secret: str) -> Actor:
    """The actor behind a typed token, behind the API's auth-failure limit.

    :raise AuthenticationError: nothing typed, or an unknown token (counted).
    :raise TooManyFailuresError: this address failed too often; the token was not checked.
    """
    if not secret:
        raise AuthenticationError("Enter your token.")

    def check() -> Actor:
        with db().read() as db_session:
            actor = credentials.authenticate(db_session, secret)
        if actor is None:
            raise AuthenticationError("That token is unknown or has been revoked.")
        return actor

    return limiter().authenticate(client_address(), secret, "ui", check)


def _too_many_failures(error: TooManyFailuresError) -> Any:
    """The sign-in form again, saying how long to wait (429 + Retry-After)."""
    wait = f"Too many failed sign-ins from your address. Try again in {error.retry_after} s."
    page, status = render("sign_in.html", 429, next=request.form.get("next", ""), error=wait)
    return page, status, {"Retry-After": str(error.retry_after)}


def _start_session(actor: Actor) -> None:
    """A fresh session (new CSRF token too) holding its id, never the secret."""
    assert actor.role is not None and actor.token_id is not None
    with db().write() as db_session:
        session_id = ui_sessions.start(db_session, actor.token_id, _now(), SESSION_LIFETIME)
    session.clear()
    session.permanent = True
    session[SESSION_ID] = session_id


@bp.post("/sign-out")
def sign_out() -> Response:
    """End the session on the server (every copy of the cookie) and in the browser."""
    session_id = session.get(SESSION_ID)
    if isinstance(session_id, str):
        with db().write() as db_session:
            ui_sessions.end(db_session, session_id)
    session.clear()
    return redirect(url_for("ui.sign_in"), 303)
