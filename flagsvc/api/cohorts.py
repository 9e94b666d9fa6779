"""Early-adopter cohorts and their members."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy.orm import Session

from flagsvc.api.auth import requires
from flagsvc.api.etags import optional_if_match
from flagsvc.domain.catch_all import catch_all_reason
from flagsvc.domain.roles import Permission
from flagsvc.services import cohorts
from flagsvc.services.records import Cohort
from flagsvc.services.records import CohortMember
from flagsvc.web import cursors
from flagsvc.web.context import change
from flagsvc.web.context import db
from flagsvc.web.schemas import PageArgsSchema
from flagsvc.web.schemas import page
from flagsvc.web.schemas import page_schema
from flagsvc.web.shapes.cohorts import CohortCreateSchema
from flagsvc.web.shapes.cohorts import CohortPatchSchema
from flagsvc.web.shapes.cohorts import MemberPageArgsSchema
from flagsvc.web.shapes.cohorts import MembersEditSchema
from flagsvc.web.shapes.cohorts import RuleSchema

blp = Blueprint(
    "cohorts",
    __name__,
    url_prefix="/api/v1/cohorts",
    description="Early-adopter cohorts and their members",
)


class CohortSchema(ma.Schema):
    key = ma.fields.String()
    name = ma.fields.String()
    description = ma.fields.String()
    rules = ma.fields.List(ma.fields.Nested(RuleSchema))
    opt_in = ma.fields.Boolean()
    member_count = ma.fields.Integer()
    version = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    catch_all = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "Why the rules match users nobody picked (null: bounded). A "
            "catch-all cannot be an early-access cohort in a gated environment before "
            "the flag's readiness is complete"
        },
    )


class UsageSchema(ma.Schema):
    flag = ma.fields.String()
    environment = ma.fields.String()


class CohortDetailSchema(CohortSchema):
    used_by = ma.fields.List(
        ma.fields.Nested(UsageSchema),
        metadata={"description": "Flags and environments whose state lists this cohort"},
    )


class MemberSchema(ma.Schema):
    user_key = ma.fields.String()
    source = ma.fields.String(metadata={"description": "`import` (API) or `opt_in` (SDK)"})
    added_at = ma.fields.DateTime()


class MembersChangedSchema(ma.Schema):
    added = ma.fields.Integer(metadata={"description": "Members actually added"})
    removed = ma.fields.Integer(metadata={"description": "Members actually removed"})
    member_count = ma.fields.Integer()


CohortPageSchema = page_schema(CohortSchema, "CohortPage")
MemberPageSchema = page_schema(MemberSchema, "MemberPage")


def _present(cohort: Cohort, member_count: int) -> dict[str, Any]:
    """A cohort's columns plus its member count, ready for ``CohortSchema``."""
    fields = ("key", "name", "description", "rules", "opt_in", "version", "created_at")
    shown = {field: getattr(cohort, field) for field in fields}
    return shown | {"member_count": member_count, "catch_all": catch_all_reason(cohort.rules)}


def _detail(session: Session, cohort: Cohort) -> dict[str, Any]:
    """The full view of one cohort: counts and where it is used."""
    detail = _present(cohort, cohorts.member_count(session, cohort.id))
    return detail | {"used_by": cohorts.used_by(session, cohort.id)}


@blp.route("")
class Cohorts(MethodView):
    @requires(Permission.READ)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, CohortPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """List cohorts with their member counts"""
        with db().read() as session:
            rows = cohorts.list_cohorts(session, args["after"], args["limit"] + 1)
            result = page(rows, args["limit"], lambda cohort: cohort.id)
            counts = cohorts.member_counts(session, [c.id for c in result["items"]])
            result["items"] = [_present(c, counts.get(c.id, 0)) for c in result["items"]]
            return result

    @requires(Permission.EDIT_COHORTS)
    @blp.arguments(CohortCreateSchema)
    @blp.response(201, CohortDetailSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a cohort (members are added separately, in bulk)"""
        with db().write() as session:
            cohort = cohorts.create_cohort(session, change(), cohorts.CohortSpec(**data))
            return _detail(session, cohort)


@blp.route("/<string:cohort_key>")
class CohortByKey(MethodView):
    @requires(Permission.READ)
    @blp.etag
    @blp.response(200, CohortDetailSchema)
    def get(self, cohort_key: str) -> Any:
        """Show a cohort: rules, opt-in, member count and the flags using it"""
        with db().read() as session:
            cohort = cohorts.get_cohort(session, cohort_key)
            blp.set_etag(cohorts.cohort_etag(cohort))
            return _detail(session, cohort)

    @requires(Permission.EDIT_COHORTS)
    @blp.etag
    @blp.arguments(CohortPatchSchema)
    @blp.response(200, CohortDetailSchema)
    def patch(self, data: dict[str, Any], cohort_key: str) -> Any:
        """Update a cohort's name, description, rules or opt-in (If-Match required)"""
        with db().write() as session:
            cohort = cohorts.update_cohort(
                session, change(), cohort_key, data, precondition=blp.check_etag
            )
            blp.set_etag(cohorts.cohort_etag(cohort))
            return _detail(session, cohort)

    @requires(Permission.EDIT_COHORTS)
    @blp.response(204)
    @blp.alt_response(409, response="CONFLICT")
    def delete(self, cohort_key: str) -> Any:
        """Delete a cohort no flag uses, with its members (409 naming a flag that uses it)"""
        with db().write() as session:
            cohorts.delete_cohort(session, change(), cohort_key, optional_if_match(blp))
        return None


@blp.route("/<string:cohort_key>/members")
class CohortMembers(MethodView):
    @requires(Permission.READ)
    @blp.arguments(MemberPageArgsSchema, location="query")
    @blp.response(200, MemberPageSchema)
    def get(self, args: dict[str, Any], cohort_key: str) -> Any:
        """List a cohort's explicit members in user-key order"""
        with db().read() as session:
            rows = cohorts.list_members(session, cohort_key, args["after"], args["limit"] + 1)
            return _member_page(rows, args["limit"])

    @requires(Permission.EDIT_COHORTS)
    @blp.arguments(MembersEditSchema)
    @blp.response(200, MembersChangedSchema)
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    def post(self, data: dict[str, Any], cohort_key: str) -> Any:
        """Add and / or remove members in bulk (idempotent; up to 100,000 keys each by default)"""
        with db().write() as session:
            return cohorts.change_members(
                session,
                change(),
                cohort_key,
                data["add"],
                data["remove"],
                precondition=optional_if_match(blp),
            )


def _member_page(rows: Sequence[CohortMember], limit: int) -> dict[str, Any]:
    """A page of members; the cursor is the last user key shown."""
    items = list(rows[:limit])
    more = len(rows) > limit and items
    return {
        "items": items,
        "next_cursor": cursors.encode_key(items[-1].user_key) if more else None,
    }
