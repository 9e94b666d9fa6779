"""Launch-readiness checklist per flag."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint(
    "readiness",
    __name__,
    url_prefix="/api/v1/flags",
    description="Launch-readiness checklist per flag",
)
