"""The admin UI under ``/ui/``: server-rendered pages over the same services as the API."""

from __future__ import annotations

from flask import Blueprint
from flask import Flask

bp = Blueprint("ui", __name__, url_prefix="/ui", template_folder="templates", static_folder="static")


def init_ui(app: Flask) -> None:
    """Register the UI blueprint on ``app``."""
    app.register_blueprint(bp)
