"""Request-scoped plumbing: the database, the clock, the caller and the request id."""

from __future__ import annotations

import re
import uuid
from typing import cast

from flask import current_app
from flask import g
from flask import request

from flagsvc.services.context import Actor
from flagsvc.services.context import Change
from flagsvc.state import AppState
from flagsvc.storage.db import Database

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def state() -> AppState:
    """The running app's state."""
    return cast(AppState, current_app.extensions["flagsvc"])


def db() -> Database:
    """The database handle."""
    return state().db


def request_id() -> str:
    """The caller's ``X-Request-ID`` if it is sane, else one made for this request."""
    if "request_id" not in g:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if valid_request_id(given) else uuid.uuid4().hex
    return cast(str, g.request_id)


def valid_request_id(given: str) -> bool:
    """Whether a caller's ``X-Request-ID`` is kept (else one is made for the request)."""
    return _REQUEST_ID.match(given) is not None


def current_actor() -> Actor:
    """The authenticated caller (set by the auth decorators)."""
    return cast(Actor, g.actor)


def change() -> Change:
    """Who is changing what, now, in which request: for the audit."""
    return Change(actor=current_actor(), at=state().clock(), request_id=request_id())
