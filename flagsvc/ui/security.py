"""CSRF protection and security headers for the UI, and nothing else of the app.

The JSON API authenticates every request by bearer token, which a browser never sends
on its own, so it needs no CSRF token; the UI authenticates by cookie, so every one
of its unsafe requests must carry the form's CSRF token. ``WTF_CSRF_CHECK_DEFAULT`` is
off and only this blueprint calls ``protect()``.
"""

from __future__ import annotations

from flask import Flask
from flask import current_app
from flask import request
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response

from flagsvc.ui import auth
from flagsvc.ui import bp

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",  # no inline script: htmx and ui.js are static files
        "style-src 'self'",  # no inline style: charts use SVG presentation attributes
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def init_app(app: Flask) -> None:
    """Bind Flask-WTF's CSRF protection (checked by the UI only) and the header hook.

    The CSRF token lives as long as the signed session (12 hours), so a form left open
    over lunch still submits; sign-out ends both.
    """
    app.config.update(
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE=app.config.get("SESSION_COOKIE_SAMESITE") or "Lax",
        PERMANENT_SESSION_LIFETIME=auth.SESSION_LIFETIME,  # Flask's default is 31 days
    )
    CSRFProtect(app)
    app.after_request(_add_security_headers)


def _add_security_headers(response: Response) -> Response:
    """Send the headers on every answer under ``/ui`` (pages, fragments, assets, 404s)."""
    if request.path == bp.url_prefix or request.path.startswith(f"{bp.url_prefix}/"):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "ui.static":
            response.headers.setdefault("Cache-Control", "no-store")  # no data after sign-out
    return response


@bp.before_request
def _guard() -> Response | None:
    """Send anyone not signed in to sign in; then refuse a form without its CSRF token (400).

    The user is loaded first so a refused form still shows the page with its menu.
    """
    redirect = auth.require_user()
    if redirect is None and request.method in UNSAFE_METHODS:
        current_app.extensions["csrf"].protect()
    return redirect
