"""The auth-failure limit at the HTTP edge: who the client is, and the 429.

The counting is ``flagsvc.services.auth_failures``; this module only names the client
and turns a refusal into the common error body with ``Retry-After``.

The client is ``request.remote_addr``. Behind a reverse proxy or load balancer that
is the proxy's address, so every client would share one budget: set
``FLAGSVC_PROXY_HOPS`` to the number of proxies in front of the service, and
``create_app`` wraps it in werkzeug's ``ProxyFix``, which takes the address that many
hops back in ``X-Forwarded-For`` (never more: a client can put anything in front).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import TypeVar

from flask import abort
from flask import request
from werkzeug.wrappers import Response

from flagsvc.services.auth_failures import AuthFailureLimiter
from flagsvc.services.auth_failures import TooManyFailuresError
from flagsvc.web.context import state
from flagsvc.web.errors import error_response

Result = TypeVar("Result")


def limiter() -> AuthFailureLimiter:
    """The running app's auth-failure limiter."""
    return state().auth_failures


def client_address() -> str:
    """The address failures are counted against (see the module docstring)."""
    return request.remote_addr or "unknown"


def presented_secret() -> str | None:
    """The credential in ``Authorization``, whatever its scheme; None when none was sent.

    Sending nothing guesses nothing, so a missing header is a plain 401 and not counted.
    """
    _scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() or None


def authenticated(channel: str, authenticate: Callable[[], Result]) -> Result:
    """Run ``authenticate`` behind the limit; a refused address gets 429 + Retry-After.

    :raise AuthenticationError: from ``authenticate`` (counted when a secret was sent).
    """
    secret = presented_secret()
    if secret is None:
        return authenticate()
    try:
        return limiter().authenticate(client_address(), secret, channel, authenticate)
    except TooManyFailuresError as error:
        abort(too_many_failures(error))


def too_many_failures(error: TooManyFailuresError) -> Response:
    """The 429 in the common error shape, with ``Retry-After``."""
    message = (
        "too many failed authentications from this address; "
        f"retry in {error.retry_after} s (credentials are not checked until then)"
    )
    response = error_response(HTTPStatus.TOO_MANY_REQUESTS, message)
    response.headers["Retry-After"] = str(error.retry_after)
    return response
