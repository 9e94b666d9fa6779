"""Early-adopter cohorts and their members."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import marshmallow as ma
from flagsvc_sdk.engine import OPERATORS
from flagsvc_sdk.engine import validate_rule
from flagsvc_sdk.engine.rules import MAX_VALUES
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import validate
from sqlalchemy.orm import Session

from flagsvc.api import cursors
from flagsvc.api.auth import requires
from flagsvc.api.context import change
from flagsvc.api.context import db
from flagsvc.api.context import state
from flagsvc.api.etags import optional_if_match
from flagsvc.api.schemas import MAX_PAGE
from flagsvc.api.schemas import PageArgsSchema
from flagsvc.api.schemas import StrictBoolean
from flagsvc.api.schemas import StrictSchema
from flagsvc.api.schemas import key_field
from flagsvc.api.schemas import page
from flagsvc.api.schemas import page_schema
from flagsvc.domain.catch_all import catch_all_reason
from flagsvc.domain.errors import TooLargeError
from flagsvc.domain.roles import Permission
from flagsvc.domain.validation import USER_KEY_MAX
from flagsvc.domain.validation import unstorable_text
from flagsvc.services import cohorts
from flagsvc.storage.models import Cohort
from flagsvc.storage.models import CohortMember

blp = Blueprint(
    "cohorts",
    __name__,
    url_prefix="/api/v1/cohorts",
    description="Early-adopter cohorts and their members",
)

RULE_OPS = tuple(OPERATORS)  # eq neq in not_in contains starts_with ends_with gt gte lt lte
# semver_gte semver_lt before after matches: the engine's table is the one list
MAX_RULES = 50
MAX_RULE_VALUE_LENGTH = 1_000
MAX_DESCRIPTION = 10_000


def _storable(text: str) -> None:
    """Refuse what the database cannot store (NUL, lone surrogates) as a 422, not a 500."""
    problem = unstorable_text(text)
    if problem:
        raise ma.ValidationError(problem)


def _name(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(validate=[validate.Length(min=1, max=200), _storable], **kwargs)


def _description(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(validate=[validate.Length(max=MAX_DESCRIPTION), _storable], **kwargs)


def _opt_in(**kwargs: Any) -> ma.fields.Boolean:
    return StrictBoolean(
        metadata={"description": "Users may enrol themselves (SDK enroll / leave)"},
        **kwargs,
    )


class RuleValue(ma.fields.Field[str | int | float | bool]):
    """One value a rule compares with: a string, a finite number or a boolean."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str | int | float | bool:
        if isinstance(value, str):
            if len(value) > MAX_RULE_VALUE_LENGTH:
                raise ma.ValidationError(f"must be at most {MAX_RULE_VALUE_LENGTH} characters")
            _storable(value)
            return value
        if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
            return value
        raise ma.ValidationError("must be a string, a finite number or a boolean")


class RuleSchema(StrictSchema):
    attribute = ma.fields.String(
        required=True,
        validate=[validate.Length(min=1, max=100), _storable],
        metadata={"description": "Context attribute, e.g. `country` or `key`"},
    )
    op = ma.fields.String(required=True, validate=validate.OneOf(RULE_OPS))
    values = ma.fields.List(
        RuleValue(), required=True, validate=validate.Length(min=1, max=MAX_VALUES)
    )


def _rules(**kwargs: Any) -> ma.fields.List[Any]:
    return ma.fields.List(
        ma.fields.Nested(RuleSchema),
        validate=validate.Length(max=MAX_RULES),
        metadata={"description": "All must match; a cohort with no rules and no members is empty"},
        **kwargs,
    )


def _engine_rule_problems(rule: Mapping[str, Any]) -> list[str]:
    """ENGINE CALL SITE: what each op accepts (semver, dates, numbers, bounded regex).

    The schema checks a rule's shape; the values an op can use are the evaluation
    engine's to say, so the service never stores a rule the SDKs cannot compile.
    """
    return validate_rule(rule)


_RULE_FIELDS = frozenset({"attribute", "op", "values"})


def _by_field(reasons: Sequence[str]) -> dict[str, list[str]]:
    """File each engine reason (``"values[2]: must be a number"``) under its field."""
    placed: dict[str, list[str]] = {}
    for reason in reasons:
        field = re.split(r"[\[:]", reason, maxsplit=1)[0]
        placed.setdefault(field if field in _RULE_FIELDS else "_schema", []).append(reason)
    return placed


class _RulesChecked(StrictSchema):
    """Runs the engine over each well-formed rule; errors land on ``rules.<index>.<field>``."""

    @ma.validates_schema
    def _rules_the_engine_accepts(self, data: dict[str, Any], **_kwargs: Any) -> None:
        problems = {
            index: _by_field(reasons)
            for index, rule in enumerate(data.get("rules") or [])
            if (reasons := _engine_rule_problems(rule))
        }
        if problems:
            raise ma.ValidationError({"rules": problems})


class CohortCreateSchema(_RulesChecked):
    key = key_field(required=True)
    name = _name(required=True)
    description = _description(load_default="")
    rules = _rules(load_default=list)
    opt_in = _opt_in(load_default=False)


class CohortPatchSchema(_RulesChecked):
    name = _name()
    description = _description()
    rules = _rules()
    opt_in = _opt_in()

    @ma.pre_load
    def _key_is_immutable(self, data: Any, **_kwargs: Any) -> Any:
        if isinstance(data, Mapping) and "key" in data:
            raise ma.ValidationError(
                "a cohort's key is immutable (flags refer to it); create a new cohort instead",
                field_name="key",
            )
        return data


def member_limit() -> int:
    """Most user keys one ``add`` or ``remove`` list may hold (configured, default 100,000)."""
    return state().config.max_members_per_request


class UserKeyList(ma.fields.List[str]):
    """A list of user keys, checked in one pass (100,000 of them must stay cheap).

    Its length is checked before, by ``MembersEditSchema`` (too many is a 413).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            ma.fields.String(validate=validate.Length(min=1, max=USER_KEY_MAX)), **kwargs
        )

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> list[str | None]:
        if not isinstance(value, list):
            raise ma.ValidationError("must be a list of user keys")
        problems = ((i, cohorts.user_key_problem(key)) for i, key in enumerate(value))
        bad = {i: [problem] for i, problem in problems if problem}
        if bad:
            raise ma.ValidationError(dict(list(bad.items())[:20]))
        return list(value)


_LIMIT_DOC = "; more than FLAGSVC_MAX_MEMBERS_PER_REQUEST (default 100,000) is a 413"


class MembersEditSchema(StrictSchema):
    add = UserKeyList(
        load_default=list, metadata={"description": "User keys to import" + _LIMIT_DOC}
    )
    remove = UserKeyList(
        load_default=list, metadata={"description": "User keys to remove" + _LIMIT_DOC}
    )

    @ma.pre_load
    def _within_member_limit(self, data: Any, **_kwargs: Any) -> Any:
        """Count before checking each key: too many is 413 (split it), not 422 (wrong)."""
        limit = member_limit()
        for field in ("add", "remove"):
            keys = data.get(field) if isinstance(data, Mapping) else None
            if isinstance(keys, list) and len(keys) > limit:
                raise TooLargeError(field, limit, len(keys), "user keys")
        return data

    @ma.validates_schema
    def _something_to_do(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data["add"] and not data["remove"]:
            message = "send at least one user key in add or remove"
            raise ma.ValidationError({"add": [message], "remove": [message]})


class MemberPageArgsSchema(StrictSchema):
    """Like ``PageArgsSchema``, but the cursor is a position in user-key order."""

    limit = ma.fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_PAGE))
    cursor = cursors.cursor_field(1_400, "Opaque: the next_cursor of the previous page")

    @ma.post_load
    def _decode_cursor(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        data["after"] = cursors.decode_key(data.pop("cursor", None), cohorts.user_key_problem)
        return data


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
