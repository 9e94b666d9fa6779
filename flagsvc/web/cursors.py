"""The one cursor codec: opaque page cursors, for integer positions and for user keys.

A cursor is URL-safe base64 (no padding) of ``p<position>`` (a row id or an audit
sequence number) or ``u<user key>`` (cohort members, in user-key order). Decoding
accepts only what encoding produces, and only positions the column can hold: a forged
``p9223372036854775808`` is a 422 naming ``cursor``, not a database overflow (a 500
on PostgreSQL, whose ``integer`` ends at 2**31 - 1 and ``bigint`` at 2**63 - 1).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

import marshmallow as ma
from marshmallow import validate

from flagsvc.web.patterns import Pattern

INT32_MAX = 2**31 - 1
"""The largest id an ``integer`` primary key holds (every table's but the audit's)."""
INT64_MAX = 2**63 - 1
"""The largest audit sequence number (``bigint``)."""
PATTERN = r"^[A-Za-z0-9_-]{1,1400}$"
"""What every cursor looks like (the OpenAPI document carries it, so clients see it)."""
REFUSED = "not a cursor this API issued"

_SHAPE = re.compile(PATTERN.removesuffix("$"))
_POSITION = re.compile(r"p(0|[1-9][0-9]{0,18})")


def cursor_field(max_length: int, description: str) -> ma.fields.String:
    """The ``cursor`` query argument: its pattern and length in the document."""
    return ma.fields.String(
        load_default=None,
        validate=[validate.Length(max=max_length), Pattern(PATTERN, error=REFUSED)],
        metadata={"description": description},
    )


def encode_position(position: int) -> str:
    """An opaque cursor for the position after ``position``."""
    return _encode(f"p{position}")


def decode_position(cursor: str | None, maximum: int = INT32_MAX) -> int:
    """The position a cursor stands for (0 for none), at most ``maximum``.

    :raise ma.ValidationError: on ``cursor``: not made by us, or past ``maximum``.
    """
    if not cursor:
        return 0
    text = _decode(cursor)
    found = _POSITION.fullmatch(text or "")
    if found is None or int(found.group(1)) > maximum:
        raise ma.ValidationError(REFUSED, field_name="cursor")
    return int(found.group(1))


def encode_key(user_key: str) -> str:
    """An opaque cursor for the position after ``user_key``."""
    return _encode("u" + user_key)


def decode_key(cursor: str | None, problem: Callable[[str], str | None]) -> str | None:
    """The user key a member cursor stands for (None: from the start).

    ``problem`` names what is wrong with a user key (None: nothing), so a cursor never
    carries a key the service could not have stored.

    :raise ma.ValidationError: on ``cursor``: not made by us.
    """
    if not cursor:
        return None
    text = _decode(cursor)
    if text is None or not text.startswith("u") or problem(text[1:]) is not None:
        raise ma.ValidationError(REFUSED, field_name="cursor")
    return text[1:]


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str | None:
    """The text inside ``cursor`` if it is canonical (re-encodes to itself), else None."""
    if not _SHAPE.fullmatch(cursor):
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return text if _encode(text) == cursor else None
