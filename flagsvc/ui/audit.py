"""The audit log page: filters, the hash chain's status, and a CSV export of the same view.

Newest first, paged back and forth in time, each event said in words (``history``)
with its before → after fields, and the raw event one click away. Filters are checked
by the API's ``AuditArgsSchema``; the action filter lists ``Action``; times typed in
the page are UTC.
The export streams every match in flat memory, like ``GET /api/v1/audit?format=csv``,
but under the session cookie so a plain link works in the browser.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flask import Response
from flask import abort
from flask import request
from flask import stream_with_context

from flagsvc.domain.actions import Action
from flagsvc.domain.roles import Permission
from flagsvc.services import audit
from flagsvc.services import audit_verification
from flagsvc.services.records import AuditEvent
from flagsvc.ui import bp
from flagsvc.ui import history
from flagsvc.ui.auth import current_user
from flagsvc.ui.forms import PAGE
from flagsvc.ui.forms import FormInvalidError
from flagsvc.ui.forms import FormState
from flagsvc.ui.forms import utc_text
from flagsvc.ui.forms import validate
from flagsvc.ui.pages import render
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.csv_cells import safe_row
from flagsvc.web.cursors import encode_position
from flagsvc.web.shapes.audit import EXPORT_FIELDS
from flagsvc.web.shapes.audit import AuditArgsSchema
from flagsvc.web.shapes.audit import AuditEventSchema

PAGE_SIZE = 100
FILTERS = ("flag", "actor", "action", "since", "until")
PAGING = ("older", "newer")
ACTION_OPTIONS = [(action.value, action.value) for action in Action]


def _filters(args: Mapping[str, str]) -> tuple[dict[str, str], audit.AuditQuery]:
    """The page's filters as typed, and as the service's query (checked by the API schema).

    The cursors ``older`` and ``newer`` are the API's opaque cursors, decoded by its
    schema: ``older`` pages back from an event, ``newer`` forward from one.

    :raise FormInvalidError: a filter or a cursor breaks the API's rules.
    """
    raw = {k: args[k].strip() for k in FILTERS if args.get(k, "").strip()}
    sent = {k: utc_text(v) if k in ("since", "until") else v for k, v in raw.items()}
    loaded = validate(AuditArgsSchema(), sent, {})
    query = audit.AuditQuery(
        loaded.get("flag"),
        loaded.get("actor"),
        loaded.get("action"),
        loaded.get("since"),
        loaded.get("until"),
    )
    return raw, query


def _page_of(args: Mapping[str, str], query: audit.AuditQuery) -> audit.AuditQuery:
    """The newest page, or the one before ``older`` / after ``newer`` (cursor paging)."""
    if args.get("newer"):
        after = validate(AuditArgsSchema(), {"cursor": args["newer"]}, {})["after"]
        return replace(query, after_seq=after)
    if args.get("older"):
        before = validate(AuditArgsSchema(), {"cursor": args["older"]}, {})["after"]
        return replace(query, before_seq=before, newest_first=True)
    return replace(query, newest_first=True)


@bp.get("/audit")
def audit_log() -> Any:
    """The audit log, newest first, filtered, paged back and forth in time."""
    try:
        raw, query = _filters(request.args)
        paged = _page_of(request.args, query)
    except FormInvalidError as error:
        raw = {k: request.args.get(k, "") for k in FILTERS}
        errors = {(PAGE if k == "cursor" else k): v for k, v in error.errors.items()}
        form = FormState("audit", raw, errors)
        return render("audit.html", 422, **_choices(), form=form, events=[], filters=raw)
    with db().read() as session:
        events = list(audit.query(session, paged, PAGE_SIZE + 1))
        more = len(events) > PAGE_SIZE
        events = events[:PAGE_SIZE]
        if not paged.newest_first:  # read forward from ``newer``: show newest first again
            events.reverse()
        entries = [(event, history.describe(event)) for event in events]
    return render("audit.html", **_choices(), form=FormState("audit", raw), entries=entries,
                  filters=raw, pretty=_pretty, **_links(raw, paged, events, more))  # fmt: skip


def _choices() -> dict[str, Any]:
    return {"section": "ui.audit_log", "action_options": ACTION_OPTIONS}


def _links(
    raw: Mapping[str, str], paged: audit.AuditQuery, events: list[AuditEvent], more: bool
) -> dict[str, Any]:
    """Links to the older and newer pages (each exists only when there are events there)."""
    if not events:
        return {"older_args": None, "newer_args": None}
    opened_at_newest = paged.newest_first and paged.before_seq is None
    has_older = more if paged.newest_first else paged.after_seq > 0
    has_newer = not opened_at_newest if paged.newest_first else more
    return {
        "older_args": {**raw, "older": encode_position(events[-1].seq)} if has_older else None,
        "newer_args": {**raw, "newer": encode_position(events[0].seq)} if has_newer else None,
    }


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
    return render("audit.html", **_choices(), form=FormState(), entries=[], report=report,
                  filters={})  # fmt: skip


@bp.get("/audit/export.csv")
def audit_export() -> Any:
    """Every event matching the page's filters, as CSV (the API's columns)."""
    try:
        _raw, query = _filters(request.args)
    except FormInvalidError as error:
        form = FormState("audit", dict(request.args), error.errors)
        return render("audit.html", 422, **_choices(), form=form, entries=[], filters={})
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
    for event in audit.stream(db().read, query):  # no connection held while it is read
        writer.writerow(safe_row(_csv_row(event)))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
