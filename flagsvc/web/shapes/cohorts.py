"""The cohorts shapes both HTTP faces use: the API validates with them, the UI's forms too."""

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
from marshmallow import validate

from flagsvc.domain.errors import TooLargeError
from flagsvc.domain.validation import USER_KEY_MAX
from flagsvc.domain.validation import unstorable_text
from flagsvc.services import cohorts
from flagsvc.web import cursors
from flagsvc.web.context import state
from flagsvc.web.schemas import MAX_PAGE
from flagsvc.web.schemas import StrictBoolean
from flagsvc.web.schemas import StrictSchema
from flagsvc.web.schemas import key_field

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
