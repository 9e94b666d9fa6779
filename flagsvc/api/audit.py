"""The audit log: filtered, cursor-paged, exported as CSV / NDJSON, and verified."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import marshmallow as ma
from flask import Response
from flask import stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from flagsvc.api.auth import requires
from flagsvc.domain.roles import Permission
from flagsvc.services import audit
from flagsvc.services import audit_verification
from flagsvc.services.records import AuditEvent
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.csv_cells import safe_row
from flagsvc.web.schemas import page
from flagsvc.web.schemas import page_schema
from flagsvc.web.shapes.audit import EXPORT_FIELDS
from flagsvc.web.shapes.audit import AuditArgsSchema
from flagsvc.web.shapes.audit import AuditEventSchema

blp = Blueprint(
    "audit", __name__, url_prefix="/api/v1/audit", description="Append-only, hash-chained audit log"
)


EXPORT_CONTENT = {
    "text/csv": {"schema": {"type": "string"}},
    "application/x-ndjson": {"schema": {"type": "string"}},
}


AuditPageSchema = page_schema(AuditEventSchema, "AuditPage")


class ChainReportSchema(ma.Schema):
    valid = ma.fields.Boolean()
    events_checked = ma.fields.Integer(metadata={"description": "Events this check recomputed"})
    first_broken_seq = ma.fields.Integer(allow_none=True)
    reason = ma.fields.String(allow_none=True)
    verified_from = ma.fields.Integer(
        metadata={"description": "The checkpoint this check continued from (0: the first event)"}
    )
    verified_seq = ma.fields.Integer(metadata={"description": "The newest event known good"})
    complete = ma.fields.Boolean(
        metadata={"description": "False: stopped at its limit before the newest event; call again"}
    )


class ChainHeadSchema(ma.Schema):
    seq = ma.fields.Integer(metadata={"description": "The newest event (0: none yet)"})
    hash = ma.fields.String(metadata={"description": "Its hash: keep both outside the database"})
    sealed = ma.fields.Boolean(metadata={"description": "Sealed with the audit key (HMAC)"})


@blp.route("")
class AuditLog(MethodView):
    @requires(Permission.READ)
    @blp.arguments(AuditArgsSchema, location="query")
    @blp.response(
        200, AuditPageSchema, description="JSON page; format=csv or ndjson streams every match"
    )
    @blp.doc(responses={200: {"content": EXPORT_CONTENT}})  # int: merges into the response's
    def get(self, args: dict[str, Any]) -> Any:
        """Query the audit log"""
        filters = audit.AuditQuery(
            args.get("flag"),
            args.get("actor"),
            args.get("action"),
            args.get("since"),
            args.get("until"),
            args["after"],
        )
        if args["format"] != "json":
            return _export(filters, args["format"])
        with db().read() as session:
            rows = audit.query(session, filters, args["limit"] + 1)
            return page(rows, args["limit"], lambda event: event.seq)


@blp.route("/verify")
class AuditVerify(MethodView):
    @requires(Permission.READ)
    @blp.response(200, ChainReportSchema)
    def get(self) -> Any:
        """Verify the hash chain from the last verified event (at most 25,000 events a call)

        Checks that the last verified event is unchanged and recomputes what was added
        since; ``complete`` is false when more remain (call again). The whole chain:
        ``/verify/full`` (admins).
        """
        return audit_verification.verify(db(), state().audit_keys, state().clock())


@blp.route("/verify/full")
class AuditVerifyFull(MethodView):
    @requires(Permission.VERIFY_WHOLE_AUDIT)
    @blp.response(200, ChainReportSchema)
    def get(self) -> Any:
        """Recompute the whole hash chain from the first event and name the first broken link"""
        return audit_verification.verify(db(), state().audit_keys, state().clock(), full=True)


@blp.route("/head")
class AuditHead(MethodView):
    @requires(Permission.READ)
    @blp.response(200, ChainHeadSchema)
    def get(self) -> Any:
        """The newest event's seq and hash: an anchor to keep outside the database"""
        with db().read() as session:
            return audit.chain_head(session)


def _export(filters: audit.AuditQuery, fmt: str) -> Response:
    mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
    lines = _csv_lines(filters) if fmt == "csv" else _ndjson_lines(filters)
    response = Response(stream_with_context(lines), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="audit.{fmt}"'
    return response


def _export_row(event: AuditEvent) -> dict[str, Any]:
    row = AuditEventSchema().dump(event)
    return {field: row.get(field) for field in EXPORT_FIELDS}


def _ndjson_lines(filters: audit.AuditQuery) -> Iterator[str]:
    for event in audit.stream(db().read, filters):
        yield json.dumps(_export_row(event), separators=(",", ":")) + "\n"


def _csv_lines(filters: audit.AuditQuery) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for event in audit.stream(db().read, filters):  # no connection held while it is read
        row = _export_row(event)
        row["before"], row["after"] = json.dumps(row["before"]), json.dumps(row["after"])
        writer.writerow(safe_row(row))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
