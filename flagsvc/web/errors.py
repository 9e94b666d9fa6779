"""One table maps domain errors to HTTP status codes; every error body has one shape.

The shape is flask-smorest's ``ErrorSchema``: ``code``, ``status``, ``message`` and
``errors`` (``{"json": {field: [reason]}}`` when a field is to blame), so a client
parses a 401, a 409 and a 422 the same way.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask
from flask import Response
from flask import has_request_context
from flask import jsonify
from flask import request
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import RequestEntityTooLarge

from flagsvc.domain import errors as domain
from flagsvc.storage.db import UNAVAILABLE_ERRORS
from flagsvc.web.body_limits import TooManyFormFields
from flagsvc.web.body_limits import body_limit

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 5
"""Long enough for a database restart or failover, short enough for a person retrying."""

STATUS_BY_ERROR: tuple[tuple[type[domain.DomainError], HTTPStatus], ...] = (
    (domain.AuthenticationError, HTTPStatus.UNAUTHORIZED),
    (domain.PermissionDeniedError, HTTPStatus.FORBIDDEN),
    (domain.NotFoundError, HTTPStatus.NOT_FOUND),
    (domain.ConflictError, HTTPStatus.CONFLICT),
    (domain.StaleVersionError, HTTPStatus.PRECONDITION_FAILED),
    (domain.InvalidFieldError, HTTPStatus.UNPROCESSABLE_ENTITY),
    (domain.TooLargeError, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (domain.TooManyRequestsError, HTTPStatus.TOO_MANY_REQUESTS),
    (domain.PromisedDateError, HTTPStatus.BAD_REQUEST),
)


def status_for(error: domain.DomainError) -> HTTPStatus:
    """The status code for ``error`` (most specific class listed first wins)."""
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return HTTPStatus.BAD_REQUEST


def error_response(status: HTTPStatus, message: str, **extra: Any) -> Response:
    """Render the common error body."""
    body = {"code": status.value, "status": status.phrase, "message": message, **extra}
    response = jsonify(body)
    response.status_code = status.value
    if status is HTTPStatus.UNAUTHORIZED:
        response.headers["WWW-Authenticate"] = 'Bearer realm="flagsvc"'
    return response


def _domain_error(error: domain.DomainError) -> Response:
    extra: dict[str, Any] = {}
    field = getattr(error, "field", None)
    if field:
        extra["errors"] = {_location(field): {field: [getattr(error, "reason", error.message)]}}
    if isinstance(error, domain.ReadinessRequiredError | domain.GateError) and error.missing:
        extra["missing_readiness"] = error.missing
    response = error_response(status_for(error), error.message, **extra)
    if isinstance(error, domain.TooManyRequestsError):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _location(field: str) -> str:
    """Where the field to blame came from, as webargs names it: a rule checked beyond the
    schema (a period needs the clock) may concern a query argument as well as the body."""
    return "query" if has_request_context() and field in request.args else "json"


def _database_unavailable(error: Exception) -> Response:
    """503 + Retry-After: the request changed nothing (its transaction rolled back), so the
    client may simply send it again; a 500 would read as a bug and not invite a retry."""
    log.error("database unavailable: %s", error)
    response = error_response(HTTPStatus.SERVICE_UNAVAILABLE, _database_reason(error))
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def _database_reason(error: Exception) -> str:
    """Say what went wrong without leaking the driver's message (hosts, SQL)."""
    if isinstance(error, PoolTimeoutError):
        return "every database connection is in use; retry"
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None)
    if sqlstate and not sqlstate.startswith(("08", "57P")):  # not a connection failure
        return f"the database could not finish the request (SQLSTATE {sqlstate}); retry"
    return "the database is unreachable; retry"


def _stale(_error: StaleDataError) -> Response:
    return error_response(
        HTTPStatus.PRECONDITION_FAILED, "changed by someone else meanwhile; fetch it and retry"
    )


def _body_too_large(error: RequestEntityTooLarge) -> Response:
    """The body limit (``FLAGSVC_MAX_BODY_BYTES``) in the common shape, not werkzeug's."""
    if isinstance(error, TooManyFormFields):
        message = f"{error.description}; send JSON or fewer fields"
        too_large = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
        return error_response(too_large, message, limit_fields=error.limit)
    limit = body_limit(request)
    return error_response(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        f"the request body is larger than the limit of {limit} bytes; split it",
        limit_bytes=limit,
    )


def _too_deep(_error: RecursionError) -> Response:
    return error_response(HTTPStatus.BAD_REQUEST, "the JSON body is nested too deeply")


def _unexpected(error: Exception) -> Response:
    log.exception("unhandled error", exc_info=error)
    return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error; it has been logged")


def register_error_handlers(app: Flask) -> None:
    """Attach the handlers (HTTP errors themselves are rendered by flask-smorest)."""
    app.register_error_handler(domain.DomainError, _domain_error)
    for error_type in UNAVAILABLE_ERRORS:
        app.register_error_handler(error_type, _database_unavailable)
    app.register_error_handler(StaleDataError, _stale)
    app.register_error_handler(RecursionError, _too_deep)
    app.register_error_handler(RequestEntityTooLarge, _body_too_large)
    if not app.testing:
        app.register_error_handler(Exception, _unexpected)
