"""The OKR board: objectives, their key results with progress, and the flags serving each.

Progress is measured (baseline → current → target), never dated: there is no due date
anywhere, and the forms use the API's promise-free schemas. Engineers and admins edit
OKRs (``EDIT_OKRS``); everyone else reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from flask import request
from markupsafe import Markup
from sqlalchemy.orm import Session

from flagsvc.domain.errors import DomainError
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.roles import Permission
from flagsvc.services import audit
from flagsvc.services import environments
from flagsvc.services import flags
from flagsvc.services import measured
from flagsvc.services import okr_report
from flagsvc.services import okrs
from flagsvc.services import value_streams
from flagsvc.services.context import Change
from flagsvc.services.records import Objective
from flagsvc.ui import bp
from flagsvc.ui import charts
from flagsvc.ui import periods
from flagsvc.ui import refusals
from flagsvc.ui.auth import change
from flagsvc.ui.auth import permission_required
from flagsvc.ui.forms import FormInvalidError
from flagsvc.ui.forms import FormState
from flagsvc.ui.forms import bounded
from flagsvc.ui.forms import number
from flagsvc.ui.forms import optional
from flagsvc.ui.forms import text
from flagsvc.ui.forms import validate
from flagsvc.ui.forms import version_guard
from flagsvc.ui.history import describe
from flagsvc.ui.pages import done
from flagsvc.ui.pages import error_status
from flagsvc.ui.pages import refuse
from flagsvc.ui.pages import render
from flagsvc.ui.refusals import Refusal
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.shapes.okrs import PERIOD
from flagsvc.web.shapes.okrs import KeyResultCreateSchema
from flagsvc.web.shapes.okrs import KeyResultPatchSchema
from flagsvc.web.shapes.okrs import ObjectiveCreateSchema

BOARD_LIMIT = 500
KEY_RESULT_NUMBERS = ("baseline", "target", "current")
HISTORY_SHOWN = 10  # changes of a key result the board lists; the audit holds them all


@bp.app_template_global("measured_chart")
def measured_chart(view: measured.KeyResultView) -> Markup:
    """A measured key result's weekly history as columns (the table beside says the same)."""
    if view.measurement is None:
        return Markup("")
    history = view.measurement.history
    known = [p for p in history if p.value is not None]
    trend = "no data yet"
    if len(known) >= 2:
        first, last = known[0].value or 0.0, known[-1].value or 0.0
        trend = f"from {first:g} in {known[0].week} to {last:g} now"
    row = view.row
    better = "lower" if view.direction == "lower_is_better" else "higher"
    desc = f"{row.title}: {trend}; target {row.target:g} {row.unit} ({better} is better)."
    columns = [charts.Bar(p.week, p.value or 0.0) for p in history]
    return charts.column_chart(f"Trend of {row.title}", desc, columns, row.unit)


@bp.get("/okrs")
def okr_board() -> Any:
    """Objectives and key results with their flags' stages and readiness."""
    refused = refusals.take()
    if refused is not None:
        return _board(refused.form, refused.status, refused.problem)
    return _board(FormState(), 200)


def refused_on_board(refusal: Refusal, anchor: str | None = None) -> Any:
    """A refused OKR form back on the board, at its objective (post/redirect/get)."""

    def in_place(shown: Refusal) -> Any:
        return _board(shown.form, shown.status, shown.problem)

    return refuse(refusal, "ui.okr_board", in_place, _anchor=anchor)


def _board(form: FormState, status: int, problem: str | None = None) -> Any:
    period = request.args.get("period", "").strip()
    period_error = PERIOD.error if period and not _valid_period(period) else None
    with db().read() as session:
        objectives = measured.objective_views(
            session,
            okrs.list_objectives(
                session, period=None if period_error else period or None, after=0, limit=BOARD_LIMIT
            ),
            state().clock(),
        )
        envs = environments.list_environments(session)
        streams = [(v.key, v.name) for v in value_streams.list_streams(session)]
        in_use = okrs.periods_in_use(session)
        now = state().clock()
        by_key_result: dict[int, list[flags.FlagDetail]] = defaultdict(list)
        listed = flags.list_flags(session, flags.FlagQuery(), BOARD_LIMIT)
        for detail in listed:
            by_key_result[detail.flag.key_result_id].append(detail)
        figures = okr_report.board_figures(
            session, listed, lambda d: d.objective_id, state().clock()
        )
        key_result_ids = [kr.row.id for o in objectives for kr in o.key_results]
        changes = okrs.key_result_history(session, key_result_ids, HISTORY_SHOWN)
        kr_history = {kr: [(e, describe(e)) for e in events] for kr, events in changes.items()}
        return render("okrs/board.html", status, section="ui.okr_board", objectives=objectives,
                      flags_by_kr=by_key_result, period=period,
                      period_error=period_error, form=form, problem=problem, measures=MEASURES,
                      environments=envs,
                      environment_options=[(e.key, e.name) for e in envs],
                      stream_options=streams, seen=audit.chain_head(session).seq,
                      period_filter=sorted(in_use | ({period} if period else set())),
                      period_choices=periods.period_choices(now, in_use),
                      this_quarter=periods.current_quarter(now),
                      rollups={o.objective.id: rollup(o) for o in objectives},
                      figures=figures, kr_history=kr_history)  # fmt: skip


def rollup(view: measured.ObjectiveView) -> float | None:
    """An objective's progress: the mean of its key results' shares of the way, each
    held to 0-100 % (one overshooting key result does not hide a stalled one); None
    while no key result has a value."""
    shares = [min(max(kr.progress, 0.0), 1.0) for kr in view.key_results if kr.progress is not None]
    return sum(shares) / len(shares) if shares else None


def _valid_period(period: str) -> bool:
    try:
        PERIOD(period)
    except ma.ValidationError:
        return False
    return True


@bp.post("/okrs/objectives")
@permission_required(Permission.EDIT_OKRS)
def objective_create() -> Any:
    """Create an objective (title, period, owner): what the work is for, not when."""
    form = request.form
    data = {name: text(form, name) for name in ("title", "period", "owner", "value_stream")}
    data["description"] = form.get("description", "")
    try:
        fields = validate(ObjectiveCreateSchema(), optional(data), {})
        with db().write() as session:
            objective = okrs.create_objective(session, change(), fields)
    except FormInvalidError as error:
        return refused_on_board(Refusal(FormState("objective", form, error.errors), 422))
    except DomainError as error:
        return refused_on_board(
            Refusal(FormState("objective", form, {}), error_status(error), error.message)
        )
    return done(f"Objective “{objective.title}” created.", "ui.okr_board",
                _anchor=f"objective-{objective.id}")  # fmt: skip


def _key_result_fields(form: Mapping[str, str], prefix: str = "") -> dict[str, Any]:
    data: dict[str, Any] = {name: text(form, prefix + name) for name in ("title", "metric", "unit")}
    data |= {name: number(text(form, prefix + name)) for name in KEY_RESULT_NUMBERS}
    return optional(data)


MEASURES = [
    ("flow_time_p50", "Flow time, median (days; lower is better)"),
    ("flow_time_p85", "Flow time, 85th percentile (days; lower is better)"),
    ("wait_for_readiness_p50", "Wait for readiness, median (days; lower is better)"),
    ("flow_load", "Flow load: flags in flight (lower is better)"),
    ("flow_velocity", "Flow velocity: releases per week (higher is better)"),
    ("flow_efficiency", "Flow efficiency: active share of flow time (higher is better)"),
    ("flow_distribution", "Share of one kind of work among releases"),
]
"""The measures the key-result form offers (the API's FlowMeasure, in words)."""


def _measure_fields(form: Mapping[str, str], objective_id: int) -> dict[str, Any]:
    """The form's ``measure-…`` fields as the API's ``measure`` (none: typed in)."""
    metric = text(form, "measure-metric")
    if not metric:
        return {}
    measure: dict[str, Any] = {"metric": metric}
    measure["environment"] = text(form, "measure-environment") or "production"
    if text(form, "measure-flow_item"):
        measure["flow_item"] = text(form, "measure-flow_item")
    window = text(form, "measure-window_days")
    if window:
        measure["window_days"] = int(window) if window.isdigit() else window
    if form.get("measure-scope", "objective") == "objective":
        measure["objective_id"] = objective_id
    return {"measure": measure}


def objective_options(objectives: Sequence[Objective]) -> list[tuple[int, str]]:
    """Objectives as a picker's options: ``(id, "Title (2026-Q4)")``."""
    return [(o.id, f"{o.title} ({o.period})") for o in objectives]


@dataclass(frozen=True, slots=True)
class NewKeyResult:
    """A key result typed into another form (the new-flag form), checked by the API's schemas.

    ``objective_id`` names an existing objective; else ``objective`` holds a new one's fields.
    """

    objective_id: int | None
    objective: Mapping[str, Any] | None
    key_result: Mapping[str, Any]

    def create(self, session: Session, who: Change) -> int:
        """Create the objective (if new) and the key result; the key result's id."""
        objective_id = self.objective_id
        if objective_id is None:
            objective_id = okrs.create_objective(session, who, self.objective or {}).id
        return okrs.create_key_result(session, who, objective_id, self.key_result).id


def new_key_result(form: Mapping[str, str], prefix: str) -> NewKeyResult:
    """Read the ``<prefix>…`` fields of a form as a new key result (and maybe objective).

    :raise FormInvalidError: with the problems under the form's own field names.
    """
    errors: dict[str, list[str]] = {}
    chosen = text(form, f"{prefix}objective_id")
    objective_id = bounded(chosen, 2**31 - 1)
    objective = None
    if objective_id is None:
        data = {n: text(form, f"{prefix}objective_{n}") for n in ("title", "period", "owner")}
        try:
            objective = validate(ObjectiveCreateSchema(), optional(data), {})
        except FormInvalidError as error:
            errors |= {f"{prefix}objective_{k}": v for k, v in error.errors.items()}
    try:
        fields = validate(KeyResultCreateSchema(), _key_result_fields(form, f"{prefix}kr_"), {})
    except FormInvalidError as error:
        errors |= {f"{prefix}kr_{k}": v for k, v in error.errors.items()}
    if errors:
        raise FormInvalidError(errors)
    return NewKeyResult(objective_id, objective, fields)


@bp.post("/okrs/objectives/<int:objective_id>/key-results")
@permission_required(Permission.EDIT_OKRS)
def key_result_create(objective_id: int) -> Any:
    """Add a key result: a metric with baseline and target (current starts at baseline)."""
    form, form_name = request.form, f"kr-new-{objective_id}"
    try:
        data = _key_result_fields(form) | _measure_fields(form, objective_id)
        fields = validate(KeyResultCreateSchema(), data, {})
        with db().write() as session:
            okrs.create_key_result(session, change(), objective_id, fields)
    except FormInvalidError as error:
        return refused_on_board(Refusal(FormState(form_name, form, error.errors), 422), form_name)
    except InvalidFieldError as error:
        errors = {error.field.replace(".", "-"): [error.reason]}
        return refused_on_board(Refusal(FormState(form_name, form, errors), 422), form_name)
    except DomainError as error:
        return refused_on_board(
            Refusal(FormState(form_name, form, {}), error_status(error), error.message), form_name
        )
    return done("Key result added.", "ui.okr_board", _anchor=f"objective-{objective_id}")


@bp.post("/okrs/key-results/<int:key_result_id>")
@permission_required(Permission.EDIT_OKRS)
def key_result_update(key_result_id: int) -> Any:
    """Record a key result's current value (guarded against someone else's edit)."""
    form, form_name = request.form, f"kr-{key_result_id}"
    guard = version_guard("key result", form.get("version"))
    try:
        fields = validate(KeyResultPatchSchema(), {"current": number(text(form, "current"))}, {})
        with db().write() as session:
            key_result = okrs.update_key_result(session, change(), key_result_id, fields, guard)
    except FormInvalidError as error:
        return refused_on_board(Refusal(FormState(form_name, form, error.errors), 422), form_name)
    except DomainError as error:
        return refused_on_board(
            Refusal(FormState(form_name, form, {}), error_status(error), error.message), form_name
        )
    return done("Progress recorded.", "ui.okr_board",
                _anchor=f"objective-{key_result.objective_id}")  # fmt: skip
