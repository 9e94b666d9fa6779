"""SDK endpoints (SDK key auth)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("sdk", __name__, url_prefix="/sdk/v1", description="SDK endpoints (SDK key auth)")
