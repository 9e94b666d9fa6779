"""Objects created once, unbound, and attached to the app in ``create_app``."""

from __future__ import annotations

from flask_smorest import Api

api = Api()
