"""Early-adopter cohorts and their members."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint(
    "cohorts",
    __name__,
    url_prefix="/api/v1/cohorts",
    description="Early-adopter cohorts and their members",
)
