"""Flags."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint(
    "flags",
    __name__,
    url_prefix=" the definition (key, OKR key result, flow item, payload):/api/v1/flags",
    description="Flags",
)
