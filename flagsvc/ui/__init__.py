"""The admin UI under ``/ui/``: server-rendered pages over the same services as the API.

Every page calls the service functions the JSON API calls (never HTTP to itself, never
SQL of its own), validates form input with the API's marshmallow schemas (so a rule is
the same rule in both places), and asks ``domain.roles.allows`` both when it hides a
button and when it accepts a POST. htmx (vendored, no build step) only enhances forms
that work without JavaScript.
"""

from __future__ import annotations

from flask import Blueprint
from flask import Flask

bp = Blueprint(
    "ui", __name__, url_prefix="/ui", template_folder="templates", static_folder="static"
)


def init_ui(app: Flask) -> None:
    """Register the UI blueprint with its CSRF protection and security headers on ``app``.

    The page modules add their routes and hooks to ``bp`` when first imported, which
    happens once per process however many apps the tests build.
    """
    from flagsvc.ui import admin  # noqa: F401  (imported for its routes)
    from flagsvc.ui import audit  # noqa: F401
    from flagsvc.ui import auth  # noqa: F401
    from flagsvc.ui import cohorts  # noqa: F401
    from flagsvc.ui import flags  # noqa: F401
    from flagsvc.ui import home  # noqa: F401
    from flagsvc.ui import okr_edits  # noqa: F401
    from flagsvc.ui import okrs  # noqa: F401
    from flagsvc.ui import pages  # noqa: F401
    from flagsvc.ui import promise  # noqa: F401
    from flagsvc.ui import readiness  # noqa: F401
    from flagsvc.ui import security
    from flagsvc.ui import stages  # noqa: F401
    from flagsvc.ui import timing  # noqa: F401
    from flagsvc.ui import value_streams  # noqa: F401
    from flagsvc.ui import values  # noqa: F401
    from flagsvc.ui import webhooks  # noqa: F401

    security.init_app(app)
    app.register_blueprint(bp)
