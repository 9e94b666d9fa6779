"""Schemas shared by every blueprint: strict loading, paging, promised-date refusal."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

import marshmallow as ma
from marshmallow import validate

from flagsvc.domain.validation import RESOURCE_KEY
from flagsvc.domain.validation import find_unstorable
from flagsvc.domain.validation import reject_promised_dates
from flagsvc.web import cursors
from flagsvc.web.patterns import Pattern

T = TypeVar("T")

MAX_PAGE = 500
KEY_RULE = "must be 1-100 characters of a-z, 0-9, dot, underscore or dash, starting with a-z or 0-9"


class StrictSchema(ma.Schema):
    """Unknown fields are an error, never silently dropped; text must be storable."""

    class Meta:
        unknown = ma.RAISE

    @ma.pre_load
    def _refuse_unstorable_text(self, data: Any, **_kwargs: Any) -> Any:
        """NUL or a lone surrogate anywhere in a field is a 422 naming that field."""
        found = find_unstorable(data) if isinstance(data, Mapping) else None
        if found:
            path, reason = found
            error: Any = [reason]
            for part in reversed(path or ("_schema",)):
                error = {part: error}
            raise ma.ValidationError(error)
        return data


class PromiseFreeSchema(StrictSchema):
    """Refuses due / target dates with a 400 that explains why (before field checks)."""

    @ma.pre_load
    def _refuse_promised_dates(self, data: Any, **_kwargs: Any) -> Any:
        reject_promised_dates(data)
        return data


class StrictBoolean(ma.fields.Boolean):
    """``true`` or ``false`` only: marshmallow's Boolean also takes ``"yes"``, ``1``, ``"on"``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class StrictFloat(ma.fields.Float):
    """A JSON number only: marshmallow's Float also takes the string ``"50"``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str | bool):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class StrictDecimal(ma.fields.Decimal):
    """A JSON number only, read exactly (``rollout_percent``); never the string ``"50"``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str | bool):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


def key_field(**kwargs: Any) -> ma.fields.String:
    """A flag / cohort / environment / item key: ``^[a-z0-9][a-z0-9._-]{0,99}$``."""
    return ma.fields.String(
        validate=Pattern(
            RESOURCE_KEY,
            error=KEY_RULE,
        ),
        **kwargs,
    )


def text_field(max_length: int, **kwargs: Any) -> ma.fields.String:
    """A free-text field with an upper bound."""
    return ma.fields.String(validate=validate.Length(max=max_length), **kwargs)


def name_field(max_length: int = 200, **kwargs: Any) -> ma.fields.String:
    """A human-readable name: 1–``max_length`` (200) characters, as its column stores."""
    return ma.fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


class PageArgsSchema(StrictSchema):
    """Cursor paging: ``limit`` items after the opaque ``cursor``."""

    MAX_POSITION = cursors.INT32_MAX
    """The largest position a cursor may carry (the id column's; the audit's is 64-bit)."""

    limit = ma.fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_PAGE))
    cursor = cursors.cursor_field(100, "Opaque: the next_cursor of the previous page")

    @ma.post_load
    def _decode_cursor(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        """Replace the opaque ``cursor`` with the position ``after`` it stands for."""
        data["after"] = cursors.decode_position(data.pop("cursor", None), self.MAX_POSITION)
        return data


def page(rows: Sequence[T], limit: int, position: Callable[[T], int]) -> dict[str, Any]:
    """Build a page from ``rows`` fetched with ``limit + 1`` (the extra row means more)."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return {
        "items": items,
        "next_cursor": cursors.encode_position(position(items[-1])) if more and items else None,
    }


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A ``{"items": [...], "next_cursor": ...}`` schema for ``item_schema``."""
    return ma.Schema.from_dict(
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema)),
            "next_cursor": ma.fields.String(allow_none=True),
        },
        name=name,
    )
