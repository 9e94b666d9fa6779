"""ETag helpers on top of flask-smorest's: optional If-Match for command endpoints."""

from __future__ import annotations

from collections.abc import Mapping

from flask import request
from flask_smorest import Blueprint
from flask_smorest.exceptions import PreconditionFailed

from flagsvc.services.context import Precondition


def optional_if_match(blp: Blueprint) -> Precondition:
    """Check If-Match only when the caller sent one (commands never require it).

    A kill switch must work without fetching first; a careful client may still
    guard a stage move with the ETag it last saw.
    """

    def check(etag_data: Mapping[str, object]) -> None:
        if request.if_match and blp._generate_etag(etag_data) not in request.if_match:
            raise PreconditionFailed

    return check
