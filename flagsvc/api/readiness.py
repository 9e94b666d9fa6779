"""Launch-readiness checklist per flag: owned by marketing and customer success."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy.orm import Session

from flagsvc.api.auth import requires
from flagsvc.api.etags import optional_if_match
from flagsvc.domain.readiness import is_ready
from flagsvc.domain.roles import Permission
from flagsvc.services import flags
from flagsvc.services import readiness
from flagsvc.services.records import Flag
from flagsvc.web.context import change
from flagsvc.web.context import db
from flagsvc.web.shapes.readiness import ReadinessChecklistSchema
from flagsvc.web.shapes.readiness import ReadinessMarkSchema

blp = Blueprint(
    "readiness",
    __name__,
    url_prefix="/api/v1/flags",
    description="Launch-readiness checklist per flag",
)


class ReadinessItemSchema(ma.Schema):
    key = ma.fields.String(attribute="item_key")
    label = ma.fields.String()
    required = ma.fields.Boolean()
    done = ma.fields.Boolean()
    note = ma.fields.String()
    done_at = ma.fields.DateTime(allow_none=True)
    done_by = ma.fields.String(allow_none=True)


class WaivedItemSchema(ma.Schema):
    key = ma.fields.String()
    label = ma.fields.String()


class WaiverSchema(ma.Schema):
    at = ma.fields.DateTime()
    by = ma.fields.String(metadata={"description": "The token that changed the checklist"})
    role = ma.fields.String()
    items = ma.fields.List(ma.fields.Nested(WaivedItemSchema))


class ReadinessSchema(ma.Schema):
    flag = ma.fields.String(attribute="flag.key")
    items = ma.fields.List(ma.fields.Nested(ReadinessItemSchema), attribute="flag.readiness_items")
    ready = ma.fields.Method("_ready")
    ready_at = ma.fields.DateTime(attribute="flag.ready_at", allow_none=True)
    missing = ma.fields.Method("_missing", metadata={"description": "Required items not yet done"})
    waivers = ma.fields.List(
        ma.fields.Nested(WaiverSchema),
        metadata={
            "description": "Each time required items not yet done were dropped from the "
            "checklist or made optional: readiness waived, by whom, which items (newest first, "
            "the latest 50; the audit has them all)"
        },
    )

    def _ready(self, shown: Shown) -> bool:
        return is_ready(flags.checklist(shown.flag))

    def _missing(self, shown: Shown) -> list[str]:
        return flags.missing_readiness(shown.flag)


@dataclass(frozen=True, slots=True)
class Shown:
    """A flag's checklist with the waivers the audit recorded for it."""

    flag: Flag
    waivers: list[readiness.Waiver]


def _shown(session: Session, flag: Flag) -> Shown:
    return Shown(flag, readiness.waivers(session, flag.key))


@blp.route("/<string:flag_key>/readiness")
class Readiness(MethodView):
    @requires(Permission.READ)
    @blp.etag
    @blp.response(200, ReadinessSchema)
    def get(self, flag_key: str) -> Any:
        """Get a flag's readiness checklist"""
        with db().read() as session:
            flag = readiness.get_readiness(session, flag_key)
            blp.set_etag(readiness.readiness_etag(flag))
            return _shown(session, flag)

    @requires(Permission.MARK_READINESS)
    @blp.etag
    @blp.arguments(ReadinessChecklistSchema)
    @blp.response(200, ReadinessSchema)
    def put(self, data: dict[str, Any], flag_key: str) -> Any:
        """Replace the checklist; kept items keep their state (If-Match required)"""
        with db().write() as session:
            flag = readiness.set_checklist(
                session, change(), flag_key, data["items"], precondition=blp.check_etag
            )
            blp.set_etag(readiness.readiness_etag(flag))
            return _shown(session, flag)


@blp.route("/<string:flag_key>/readiness/<string:item_key>")
class ReadinessItemMark(MethodView):
    @requires(Permission.MARK_READINESS)
    @blp.arguments(ReadinessMarkSchema)
    @blp.response(200, ReadinessSchema)
    def put(self, data: dict[str, Any], flag_key: str, item_key: str) -> Any:
        """Mark one item done or undone, with a note (If-Match optional)

        Answers the whole checklist, so the caller sees at once whether the flag is ready.
        """
        with db().write() as session:
            flag = readiness.mark_item(
                session, change(), flag_key, item_key, data, precondition=optional_if_match(blp)
            )
            return _shown(session, flag)
