"""The promise board page: what marketing and sales may announce, with the evidence.

The same board as ``GET /api/v1/promise-board`` (and its CSV and Atom forms, served
here too with the browser's session, so a signed-in person can download them).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response
from flask import request

from flagsvc.domain.errors import NotFoundError
from flagsvc.services import environments
from flagsvc.services import promise_board
from flagsvc.ui import bp
from flagsvc.ui.forms import FormState
from flagsvc.ui.forms import flatten
from flagsvc.ui.pages import render
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.shapes.promise import PromiseArgsSchema
from flagsvc.web.shapes.promise import atom_text
from flagsvc.web.shapes.promise import csv_text


def _query() -> tuple[promise_board.PromiseQuery, str, dict[str, list[str]]]:
    raw = {k: v.strip() for k, v in request.args.items() if v.strip()}
    try:
        args = PromiseArgsSchema().load(raw)
    except ma.ValidationError as error:
        return promise_board.PromiseQuery(), "json", flatten(error.messages)
    query = promise_board.PromiseQuery(args["environment"], args["min_days"], args["quiet_days"])
    return query, args["format"], {}


@bp.get("/promise-board")
def promise_page() -> Any:
    """Features proven in early access and safe to announce (nothing unfinished)."""
    query, _format, errors = _query()
    with db().read() as session:
        envs = environments.list_environments(session)
        try:
            found = promise_board.board(session, query, state().clock(), state().early_adopters)
        except NotFoundError as error:
            errors = {"environment": [error.message]}
            found = promise_board.board(
                session, promise_board.PromiseQuery(), state().clock(), state().early_adopters
            )
        form = FormState("promise", request.args, errors)
        options = [(e.key, e.name) for e in envs]
        return render("promise/board.html", 422 if errors else 200, section="ui.promise_page",
                      board=found, environment_options=options, form=form)  # fmt: skip


@bp.get("/promise-board.<string:fmt>")
def promise_export(fmt: str) -> Any:
    """The board as CSV or an Atom feed (``fmt``: csv or atom)."""
    query, _format, errors = _query()
    if fmt not in ("csv", "atom") or errors:
        return Response("unknown format or bad filter\n", status=404, mimetype="text/plain")
    with db().read() as session:
        found = promise_board.board(session, query, state().clock(), state().early_adopters)
    if fmt == "csv":
        return Response(csv_text(found), mimetype="text/csv")
    feed = atom_text(found, "urn:flagsvc:promise-board")
    return Response(feed, mimetype="application/atom+xml")
