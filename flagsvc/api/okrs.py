"""Objectives and key results that flags serve."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint(
    "okrs",
    __name__,
    url_prefix="/api/v1",
    description="Objectives and key results that flags serve",
)
