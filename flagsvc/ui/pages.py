"""Rendering shared by every page: layout context, redirects after a POST, error pages.

A successful POST answers 303 to a GET of the page (reloading never re-sends it); a
refused one re-renders the page with the status the API would give (422, 409, 403)
and the values the person typed, so nothing they sent is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app
from flask import flash
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from flagsvc.domain.errors import DomainError
from flagsvc.domain.roles import Permission
from flagsvc.ui import bp
from flagsvc.ui import refusals
from flagsvc.ui.forms import FormState
from flagsvc.ui.refusals import Refusal
from flagsvc.web.body_limits import TooManyFormFields
from flagsvc.web.body_limits import body_limit
from flagsvc.web.errors import status_for

NAVIGATION = (
    ("ui.flag_list", "Flags", Permission.READ),
    ("ui.cohort_list", "Cohorts", Permission.READ),
    ("ui.readiness_board", "Readiness", Permission.READ),
    ("ui.promise_page", "Safe to promise", Permission.READ),
    ("ui.okr_board", "OKRs", Permission.READ),
    ("ui.flow", "Release timing", Permission.READ),
    ("ui.value_streams_page", "Value streams", Permission.READ),
    ("ui.audit_log", "Audit", Permission.READ),
    ("ui.admin", "Admin", Permission.MANAGE_TOKENS),
)
CSRF_MESSAGE = (
    "This form could not be accepted: its security token is missing or out of date. "
    "Reload the page and send it again."
)


def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """Render ``ui/<template>`` with the layout's context and answer ``status``."""
    if context.get("form") is None:
        context["form"] = FormState()
    return render_template(f"ui/{template}", **context), status


def refuse(
    refusal: Refusal, endpoint: str, in_place: Callable[[Refusal], Any], **values: Any
) -> Any:
    """Answer a refused form: 303 to its page, which shows it again (post/redirect/get).

    htmx asked for a fragment, or the form is too large to carry: ``in_place`` renders
    it here, and the page names its own address so a reload fetches it by GET.
    """
    if not is_htmx():
        answer = refusals.redirect_refused(refusal, endpoint, **values)
        if answer is not None:
            return answer
        page = {name: value for name, value in values.items() if name != "_anchor"}
        g.replace_url = url_for(endpoint, **page)
    return in_place(refusal)


def is_htmx() -> bool:
    """Tell whether htmx sent the request (it wants a fragment, not a page)."""
    return request.headers.get("HX-Request") == "true"


def done(message: str, endpoint: str, **values: Any) -> Response:
    """Confirm a change and show the page again by GET (303: no re-send on reload)."""
    flash(message, "success")
    return redirect(url_for(endpoint, **values), 303)


def error_status(error: DomainError) -> int:
    """The status the API answers for ``error`` (one table for both)."""
    return int(status_for(error))


@bp.context_processor
def _layout() -> dict[str, Any]:
    """What ``base.html`` needs on every page: the user, their permissions, the menu."""
    user = g.get("ui_user")
    return {
        "user": user,
        "can": (lambda permission: user is not None and user.can(permission)),
        "Permission": Permission,
        "navigation": NAVIGATION,
        "is_htmx": is_htmx(),
        "replace_url": g.get("replace_url"),
    }


@bp.app_template_filter("days")
def days(value: float | None) -> str:
    """Days as people read them: one decimal; a trace below a tenth shows as ``<0.1``."""
    if value is None:
        return "—"
    if 0 < abs(value) < 0.05:
        return "<0.1"
    return f"{value:.1f}"


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> tuple[str, int]:
    """403, 404, 400 (CSRF) and friends as pages (or a fragment for htmx)."""
    code = error.code or 500
    if isinstance(error, CSRFError):
        return _error_page(code, "Form not accepted", CSRF_MESSAGE)
    return _error_page(code, error.name, error.description or "")


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> tuple[str, int]:
    """A form or upload over the body limit: say the limit and what to do instead."""
    if isinstance(error, TooManyFormFields):
        return _error_page(413, "Too large", f"{error.description}.")
    limit = body_limit(request) or current_app.config["MAX_CONTENT_LENGTH"]
    size = f"{limit / 2**20:g} MiB" if limit >= 2**20 else f"{limit / 2**10:g} KiB"
    message = (
        f"What you sent is larger than the {size} a form or upload may be. "
        "Split the file and import it in parts."
    )
    return _error_page(413, "Too large", message)


@bp.errorhandler(DomainError)
def _domain_error(error: DomainError) -> tuple[str, int]:
    """A domain error no view caught (an unknown flag in the URL, say)."""
    code = error_status(error)
    return _error_page(code, "Not found" if code == 404 else "Not possible", error.message)


def _error_page(code: int, title: str, message: str) -> tuple[str, int]:
    template = "error_fragment.html" if is_htmx() else "error.html"
    return render(template, code, code=code, title=title, message=message)


@bp.route("/<path:_unknown>")
def not_found(_unknown: str) -> Any:
    """Unknown pages under /ui answer the UI's 404 page, not the API's JSON."""
    return _error_page(404, "Not found", "There is no such page.")
