"""Per-environment flag state and stage transitions."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint(
    "flag-states",
    __name__,
    url_prefix="/api/v1/flags",
    description="Per-environment flag state and stage transitions",
)
