"""The promise board: finished features safe to announce, as JSON, CSV or an Atom feed.

Marketing and sales land here instead of asking engineering: what is on the board is
proven in early access (``flagsvc.services.promise_board`` says exactly what that means),
with the evidence beside it. Nothing unfinished ever appears.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from flagsvc.api.auth import requires
from flagsvc.domain.roles import Permission
from flagsvc.services import promise_board
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.shapes.promise import PromiseArgsSchema
from flagsvc.web.shapes.promise import PromiseSchema
from flagsvc.web.shapes.promise import atom_text
from flagsvc.web.shapes.promise import csv_text

blp = Blueprint(
    "promise",
    __name__,
    url_prefix="/api/v1",
    description="Finished features, proven in early access, safe to announce",
)


class PromiseBoardSchema(ma.Schema):
    environment = ma.fields.String()
    as_of = ma.fields.DateTime()
    min_days = ma.fields.Integer()
    quiet_days = ma.fields.Integer()
    items = ma.fields.List(ma.fields.Nested(PromiseSchema))


_FEED_CONTENT = {
    "text/csv": {"schema": {"type": "string"}},
    "application/atom+xml": {"schema": {"type": "string"}},
}


@blp.route("/promise-board")
class PromiseBoard(MethodView):
    @requires(Permission.READ)
    @blp.arguments(PromiseArgsSchema, location="query")
    @blp.response(200, PromiseBoardSchema, description="JSON; format=csv or atom: the same items")
    @blp.doc(responses={200: {"content": _FEED_CONTENT}})  # int: merges into the response's
    def get(self, args: dict[str, Any]) -> Any:
        """Features safe to announce, with their evidence (nothing unfinished appears)"""
        query = promise_board.PromiseQuery(
            args["environment"], args["min_days"], args["quiet_days"]
        )
        with db().read() as session:
            found = promise_board.board(session, query, state().clock(), state().early_adopters)
        if args["format"] == "csv":
            return Response(csv_text(found), mimetype="text/csv")
        if args["format"] == "atom":
            return Response(atom_text(found, "urn:flagsvc:promise-board"),
                            mimetype="application/atom+xml")  # fmt: skip
        return found
