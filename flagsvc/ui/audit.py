"""The audit log page: filters, the hash chain's status, and a CSV export of the same view.

Filters are checked by the API's ``AuditArgsSchema``; times typed in the page are UTC.
The export streams every match in flat memory, like ``GET /api/v1/audit?format=csv``,
but under the session cookie so a plain link works in the browser.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

from flask import Response
from flask import abort
from flask import request
from flask import stream_with_context

from flagsvc.api.audit import EXPORT_FIELDS
from flagsvc.api.audit import AuditArgsSchema
from flagsvc.api.audit import AuditEventSchema
from flagsvc.api.context import db
from flagsvc.api.context import state
from flagsvc.api.schemas import encode_cursor
from flagsvc.domain.roles import Permission
from flagsvc.services import audit
from flagsvc.services import audit_verification
from flagsvc.storage.models import AuditEvent
from flagsvc.ui import bp
from flagsvc.ui.auth import current_user
from flagsvc.ui.forms import FormInvalidError
from flagsvc.ui.forms import FormState
from flagsvc.ui.forms import utc_text
from flagsvc.ui.forms import validate
from flagsvc.ui.pages import render

PAGE_SIZE = 100
FILTERS = ("flag", "actor", "action", "since", "until")


def _filters(args: Mapping[str, str]) -> tuple[dict[str, str], audit.AuditQuery]:
    """The page's filters as typed, and as the service's query (checked by the API schema).

    :raise FormInvalidError: a filter breaks the API's rules.
    """
    raw = {k: args[k].strip() for k in FILTERS if args.get(k, "").strip()}
    sent = {k: utc_text(v) if k in ("since", "until") else v for k, v in raw.items()}
    if args.get("cursor"):
        sent["cursor"] = args["cursor"]
    loaded = validate(AuditArgsSchema(), sent, {})
    query = audit.AuditQuery(
        loaded.get("flag"),
        loaded.get("actor"),
        loaded.get("action"),
        loaded.get("since"),
        loaded.get("until"),
        loaded["after"],
    )
    return raw, query


@bp.get("/audit")
def audit_log() -> Any:
    """The audit log in chain order (oldest first), filtered and paged."""
    try:
        raw, query = _filters(request.args)
    except FormInvalidError as error:
        raw = {k: request.args.get(k, "") for k in FILTERS}
        form = FormState("audit", raw, error.errors)
        return render("audit.html", 422, section="ui.audit_log", form=form, events=[])
    with db().read() as session:
        events = audit.query(session, query, PAGE_SIZE + 1)
    more = len(events) > PAGE_SIZE
    events = events[:PAGE_SIZE]
    next_args = {**raw, "cursor": encode_cursor(events[-1].seq)} if more and events else None
    return render("audit.html", section="ui.audit_log", form=FormState("audit", raw),
                  events=events, next_args=next_args, filters=raw, pretty=_pretty)  # fmt: skip


def _pretty(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=1, sort_keys=True)


@bp.get("/audit/verify")
def audit_verify() -> Any:
    """Verify the chain from the last verified event, like the API; ``?full=1``: all (admins)."""
    full = request.args.get("full") == "1"
    if full and not current_user().can(Permission.VERIFY_WHOLE_AUDIT):
        abort(403, "Only admins may re-verify the whole chain; this check continues from the last.")
    app_state = state()
    report = audit_verification.verify(db(), app_state.audit_keys, app_state.clock(), full=full)
    return render("audit.html", section="ui.audit_log", form=FormState(), events=[],
                  report=report, filters={})  # fmt: skip


@bp.get("/audit/export.csv")
def audit_export() -> Any:
    """Every event matching the page's filters, as CSV (the API's columns)."""
    try:
        _raw, query = _filters(request.args)
    except FormInvalidError as error:
        form = FormState("audit", dict(request.args), error.errors)
        return render("audit.html", 422, section="ui.audit_log", form=form, events=[])
    response = Response(stream_with_context(_csv_lines(query)), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return response


def _csv_row(event: AuditEvent) -> dict[str, Any]:
    row = AuditEventSchema().dump(event)
    row = {field: row.get(field) for field in EXPORT_FIELDS}
    row["before"], row["after"] = json.dumps(row["before"]), json.dumps(row["after"])
    return row


def _csv_lines(query: audit.AuditQuery) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    with db().read() as session:
        for event in audit.stream(session, query):
            writer.writerow(_csv_row(event))
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
