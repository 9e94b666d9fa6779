"""Value streams side by side: which stream, and which step, holds delivery back.

Leaders read it to find and widen the bottleneck (Kersten), never to track features or
dates: per stream the median days flags spend building, waiting for readiness, in early
access and ramping, what is in flight now, and the stream and step that hold delivery
back most. Engineers and admins (``EDIT_OKRS``) create streams here.
"""

from __future__ import annotations

from typing import Any

from flask import request

from flagsvc.domain.errors import DomainError
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.roles import Permission
from flagsvc.services import environments
from flagsvc.services import flow
from flagsvc.services import value_streams
from flagsvc.ui import bp
from flagsvc.ui import charts
from flagsvc.ui.auth import change
from flagsvc.ui.auth import permission_required
from flagsvc.ui.forms import FormInvalidError
from flagsvc.ui.forms import FormState
from flagsvc.ui.forms import optional
from flagsvc.ui.forms import text
from flagsvc.ui.forms import validate
from flagsvc.ui.pages import done
from flagsvc.ui.pages import error_status
from flagsvc.ui.pages import render
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.shapes.value_streams import ValueStreamCreateSchema

STEP_WORDS = {
    "building": "Building (dark)",
    "waiting_for_readiness": "Waiting for readiness",
    "early_access": "Early access",
    "ramp": "General ramp",
}


@bp.get("/value-streams")
def value_streams_page() -> Any:
    """Every value stream's flow side by side (production unless chosen)."""
    return _page(FormState(), 200)


def _page(form: FormState, status: int, problem: str | None = None) -> Any:
    environment = request.args.get("environment", "production").strip() or "production"
    with db().read() as session:
        envs = environments.list_environments(session)
        try:
            found = value_streams.compare(session, flow.FlowQuery(environment), state().clock())
        except (NotFoundError, InvalidFieldError) as error:
            found, problem = None, error.message
            status = 404 if isinstance(error, NotFoundError) else 422
        return render("value_streams.html", status, section="ui.value_streams_page",
                      comparison=found, step_words=STEP_WORDS, chart=_chart(found),
                      environment_options=[(e.key, e.name) for e in envs],
                      environment=environment, form=form, problem=problem)  # fmt: skip


def _chart(found: value_streams.Comparison | None) -> Any:
    """Each stream's bottleneck step as a bar; the one holding delivery back in amber."""
    if found is None:
        return None
    worst = found.holds_back
    bars = [
        charts.Bar(
            f"{s.name}: {STEP_WORDS[s.bottleneck['step']].lower()}",
            s.bottleneck["median_days"],
            worst is not None and worst["value_stream"] == s.key,
        )
        for s in found.streams
        if s.bottleneck is not None
    ]
    if not bars:
        return None
    desc = "Median days in each stream's slowest step; the longest is highlighted."
    return charts.bar_chart("Bottleneck per value stream", desc, bars, "days")


@bp.post("/value-streams")
@permission_required(Permission.EDIT_OKRS)
def value_stream_create() -> Any:
    """Create a value stream (key, name, description)."""
    form = request.form
    data = optional({name: text(form, name) for name in ("key", "name", "description")})
    try:
        fields = validate(ValueStreamCreateSchema(), data, {})
        with db().write() as session:
            stream = value_streams.create_stream(session, change(), fields)
    except FormInvalidError as error:
        return _page(FormState("stream", form, error.errors), 422)
    except DomainError as error:
        return _page(FormState("stream", form, {}), error_status(error), error.message)
    return done(f"Value stream “{stream.name}” created.", "ui.value_streams_page")
