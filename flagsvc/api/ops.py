"""Operator endpoints: liveness, readiness and the Prometheus exposition.

Not part of the OpenAPI document and unauthenticated, like every probe: they reveal
health and counts, nothing about flags.
"""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from flagsvc.observability import metrics as observed
from flagsvc.services import audit
from flagsvc.web.context import db
from flagsvc.web.context import state

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Can the process serve? The database must answer (else 503).

    Redis, when configured, only degrades: without it the service still serves from
    the database and streams fall back to polling the audit head, so a load balancer
    must keep sending traffic (200, ``"status": "degraded"``).
    """
    checks = {"database": "ok" if _database_ok() else "down"}
    redis_status = state().broker.status()
    if redis_status is not None:
        checks["redis"] = redis_status
    if checks["database"] != "ok":
        status, code = "unavailable", 503
    else:
        status, code = ("degraded", 200) if "down" in checks.values() else ("ready", 200)
    body = {"status": status, "checks": checks, "streams": _streams()}
    return jsonify(body), code


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format: every metric in ``flagsvc.observability.metrics``.

    Under several gunicorn workers this is the sum over all of them (multiprocess
    mode), whichever worker answers the scrape.
    """
    _export_audit_head()
    body, content_type = observed.exposition()
    return Response(body, content_type=content_type)


def _export_audit_head() -> None:
    """Read the audit head for this scrape (one indexed query); keep the last if it fails."""
    try:
        with db().read() as session:
            head = audit.chain_head(session)
    except SQLAlchemyError:
        return
    observed.export_audit_head(head.seq, head.hash)


def _streams() -> dict[str, int]:
    app_state = state()
    return {"open": app_state.broker.subscriber_count, "limit": app_state.config.max_streams}


def _database_ok() -> bool:
    try:
        with db().read() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True
