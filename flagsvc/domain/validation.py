"""Shapes of keys and the promised-date rule, shared by the API schemas and the CLI."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flagsvc.domain.errors import PromisedDateError

RESOURCE_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}\Z")
"""Flag, cohort, environment and readiness-item keys: lowercase, URL-safe, ≤ 100 chars."""

USER_KEY_MAX = 256
TOKEN_NAME_MAX = 100
"""A token's name is who the audit says acted (``audit_events.actor``): at most this long."""
PROMISED_DATE_FIELDS = frozenset(
    {
        "due",
        "due_date",
        "due_at",
        "deadline",
        "target_date",
        "target_at",
        "eta",
        "delivery_date",
        "promised_date",
        "ship_date",
        "release_date",
        "expected_release",
    }
)


def unstorable_text(text: str) -> str | None:
    """Why the database cannot store ``text`` (NUL, lone surrogates), or None.

    JSON lets a client send both (``"\\u0000"``, ``"\\ud800"``); PostgreSQL refuses NUL
    and neither backend can encode a lone surrogate, so they must be a 422, not a 500.
    """
    if "\x00" in text:
        return "must not contain NUL characters"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode (no lone surrogates)"
    return None


Path = tuple[str | int, ...]


def find_unstorable(value: Any, path: Path = ()) -> tuple[Path, str] | None:
    """Where the first unstorable string inside ``value`` is, and why; None if none is."""
    if isinstance(value, str):
        reason = unstorable_text(value)
        return (path, reason) if reason else None
    if isinstance(value, Mapping):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list | tuple):
        items = list(enumerate(value))
    else:
        return None
    for key, item in items:
        found = find_unstorable(key, path) if isinstance(key, str) else None
        found = found or find_unstorable(item, (*path, key))
        if found:
            return found
    return None


def reject_promised_dates(payload: Any) -> None:
    """Refuse a request body that tries to attach a delivery promise.

    :raise PromisedDateError: the body names a due / target date field.
    """
    if not isinstance(payload, Mapping):
        return
    for field in payload:
        if isinstance(field, str) and field.lower() in PROMISED_DATE_FIELDS:
            raise PromisedDateError(field)
