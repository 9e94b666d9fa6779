"""Shapes of keys and the promised-date rule, shared by the API schemas and the CLI."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flagsvc.domain.errors import PromisedDateError

FLAG_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
"""Flag, cohort, environment and readiness-item keys: lowercase, URL-safe, ≤ 100 chars."""

USER_KEY_MAX = 256
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


def reject_promised_dates(payload: Any) -> None:
    """Refuse a request body that tries to attach a delivery promise.

    :raise PromisedDateError: the body names a due / target date field.
    """
    if not isinstance(payload, Mapping):
        return
    for field in payload:
        if isinstance(field, str) and field.lower() in PROMISED_DATE_FIELDS:
            raise PromisedDateError(field)
