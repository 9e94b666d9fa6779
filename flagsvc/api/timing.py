"""Release timing: timelines, flow metrics and stale flags, all derived from the audit."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint(
    "timing",
    __name__,
    url_prefix="/api/v1",
    description="Release timelines, flow metrics and stale flags, derived from the audit",
)
