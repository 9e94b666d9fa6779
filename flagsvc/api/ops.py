"""Operator endpoints: liveness and readiness (not part of the OpenAPI document)."""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from flagsvc.api.context import db

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """The process can serve: the database answers."""
    checks = {"database": _database_ok()}
    ready = all(checks.values())
    body = {
        "status": "ready" if ready else "unavailable",
        "checks": {k: "ok" if v else "down" for k, v in checks.items()},
    }
    return jsonify(body), 200 if ready else 503


def _database_ok() -> bool:
    try:
        with db().read() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True
