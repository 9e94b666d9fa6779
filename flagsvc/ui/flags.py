"""Flag pages: the list (search, filters, stage per environment) and one flag's page.

The flag page gathers what people ask about a flag in one place: the key result it
serves, its stage, cohorts, exclusions and kill switch per environment, readiness and
its history. Its stage controls live in ``stages.py``; readiness in ``readiness.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import request
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from flagsvc.domain.errors import DomainError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.errors import StaleVersionError
from flagsvc.domain.flow import FLOW_ITEMS
from flagsvc.domain.roles import Permission
from flagsvc.domain.stages import Stage
from flagsvc.services import audit
from flagsvc.services import cohorts
from flagsvc.services import early_adopters
from flagsvc.services import environments
from flagsvc.services import flag_states
from flagsvc.services import flags
from flagsvc.services import measured
from flagsvc.services import okrs
from flagsvc.services import reach
from flagsvc.services import readiness
from flagsvc.services import sdk_metrics
from flagsvc.ui import bp
from flagsvc.ui import history
from flagsvc.ui import next_steps
from flagsvc.ui import periods
from flagsvc.ui import refusals
from flagsvc.ui import timing
from flagsvc.ui import values
from flagsvc.ui.auth import change
from flagsvc.ui.auth import permission_required
from flagsvc.ui.forms import PAGE
from flagsvc.ui.forms import FormInvalidError
from flagsvc.ui.forms import FormState
from flagsvc.ui.forms import bounded
from flagsvc.ui.forms import optional
from flagsvc.ui.forms import text
from flagsvc.ui.forms import validate
from flagsvc.ui.forms import version_guard
from flagsvc.ui.forms import whole_number
from flagsvc.ui.history import changed_since
from flagsvc.ui.home import guide_context
from flagsvc.ui.okrs import NewKeyResult
from flagsvc.ui.okrs import new_key_result
from flagsvc.ui.okrs import objective_options
from flagsvc.ui.pages import done
from flagsvc.ui.pages import error_status
from flagsvc.ui.pages import refuse
from flagsvc.ui.pages import render
from flagsvc.ui.refusals import Refusal
from flagsvc.ui.snippets import snippets
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.shapes.flags import FlagCreateSchema
from flagsvc.web.shapes.flags import FlagListArgsSchema
from flagsvc.web.shapes.flags import FlagPatchSchema

PAGE_SIZE = 50
LIST_FILTERS = (
    "q",
    "stage",
    "environment",
    "objective_id",
    "flow_item",
    "archived",
    "sort",
    "page",
)
SORT_OPTIONS = [
    ("created", "Oldest first"),
    ("newest", "Newest first"),
    ("name", "Name (A to Z)"),
    ("key", "Key (A to Z)"),
]
DEFAULT_SORT = "created"
MAX_PAGE = 100_000
FLOW_ITEM_OPTIONS = [(item, item.capitalize()) for item in FLOW_ITEMS]
STAGE_OPTIONS = [(stage.value, stage.value.replace("_", " ")) for stage in Stage]
MAX_OBJECTIVES = 500  # objectives shown in pickers; an OKR set is far smaller
CARD_FORMS = ("stage", "kill", "cohorts", "exclusions")  # forms in an environment's card
HISTORY_LIMIT = 200  # changes the flag page lists; the audit log pages through the rest
NEW_KEY_RESULT = "new"  # the key-result picker's choice for "a new one, typed below"
NEW_KR_PREFIX = "new-"


@bp.get("/flags")
def flag_list() -> Any:
    """List flags with their stage in every environment; search, filter, sort and page them."""
    raw = {k: v.strip() for k, v in request.args.items() if k in LIST_FILTERS and v.strip()}
    with db().read() as session:
        context = _list_context(session) | {"sort_options": SORT_OPTIONS, "sorted_by": _order(raw)}
        try:
            page = _page_number(raw)
            found = _flag_page(session, raw, page)
        except FormInvalidError as error:  # a forged page number is the page's problem
            refused = FormState("filters", raw, error.errors)
            return render("flags/list.html", 422, **context, form=refused, rows=[], pages=None)
        except NotFoundError as error:  # an environment that does not exist
            refused = FormState("filters", raw, {"environment": [error.message]})
            return render("flags/list.html", 422, **context, form=refused, rows=[], pages=None)
        form = FormState("filters", raw)
        guide = guide_context(session) if not found.total and not raw else None
        return render("flags/list.html", **context, form=form, guide=guide, rows=found.rows,
                      pages=Pages.of(found.total, page, raw))  # fmt: skip


def _flag_query(raw: Mapping[str, str]) -> flags.FlagQuery:
    """The filters, checked by the API's list schema (same rules, same messages)."""
    filters = {k: v for k, v in raw.items() if k not in ("sort", "page")}
    args = validate(FlagListArgsSchema(), {**filters, "limit": PAGE_SIZE}, {})
    return flags.FlagQuery(**{k: v for k, v in args.items() if k != "limit"})


def _order(raw: Mapping[str, str]) -> str:
    """The sort asked for; an unknown one falls back to the default (it only orders)."""
    order = raw.get("sort", DEFAULT_SORT)
    return order if order in flags.FLAG_ORDERS else DEFAULT_SORT


def _page_number(raw: Mapping[str, str]) -> int:
    page = bounded(raw.get("page", "1"), MAX_PAGE)
    if page is None or page < 1:
        said = f"There is no page {raw.get('page')!r}: pages are numbered from 1 to {MAX_PAGE:,}."
        raise FormInvalidError({PAGE: [said]})
    return page


def _flag_page(session: Session, raw: Mapping[str, str], page: int) -> flags.FlagPage:
    """The page asked for; past the last one (flags archived since), the last one."""
    query, order = _flag_query(raw), _order(raw)
    found = flags.sorted_flags(session, query, order, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    last = Pages.count(found.total)
    if page > last:
        found = flags.sorted_flags(session, query, order, (last - 1) * PAGE_SIZE, PAGE_SIZE)
    return found


@dataclass(frozen=True, slots=True)
class Pages:
    """Where a page of the flag list sits: its number, how many, links either way."""

    number: int
    count_pages: int
    total: int
    previous_args: dict[str, str] | None
    next_args: dict[str, str] | None

    @staticmethod
    def count(total: int) -> int:
        return max(1, -(-total // PAGE_SIZE))

    @classmethod
    def of(cls, total: int, page: int, raw: Mapping[str, str]) -> Pages:
        last = cls.count(total)
        number = min(page, last)
        before = {**raw, "page": str(number - 1)} if number > 1 else None
        after = {**raw, "page": str(number + 1)} if number < last else None
        return cls(number, last, total, before, after)


def _list_context(session: Session) -> dict[str, Any]:
    objectives = okrs.list_objectives(session, period=None, after=0, limit=MAX_OBJECTIVES)
    envs = environments.list_environments(session)
    return {
        "section": "ui.flag_list",
        "environments": envs,
        "environment_options": [(env.key, env.name) for env in envs],
        "objectives": {o.id: o for o in objectives},
        "key_results": {kr.id: kr.title for o in objectives for kr in o.key_results},
        "objective_options": objective_options(objectives),
        "stage_options": STAGE_OPTIONS,
        "flow_item_options": FLOW_ITEM_OPTIONS,
    }


@bp.get("/flags/new")
@permission_required(Permission.EDIT_FLAGS)
def flag_new() -> Any:
    """The form for a new flag (dark everywhere, default readiness checklist)."""
    refused = refusals.take()
    if refused is not None:
        return _flag_form_page(refused.form, refused.status)
    return _flag_form_page(FormState(), status=200)


@bp.post("/flags")
@permission_required(Permission.EDIT_FLAGS)
def flag_create() -> Any:
    """Create a flag with the API's rules; re-show the form with reasons if refused."""
    form = request.form
    problems: dict[str, list[str]] = {}
    data = _definition(form, problems) | {"key": text(form, "key")}
    data |= values.type_fields(form, problems)
    new_kr = text(form, "key_result_id") == NEW_KEY_RESULT
    try:
        fields, key_result = _flag_and_key_result(data, problems, new_kr)
        with db().write() as session:
            who = change()
            if key_result is not None:
                fields = {**fields, "key_result_id": key_result.create(session, who)}
            detail = flags.create_flag(session, who, fields)
    except FormInvalidError as error:
        errors = values.on_row_errors(error.errors, values.new_flag_rows(form))
        return _refused_new(Refusal(FormState("flag", form, errors), 422))
    except DomainError as error:
        state = FormState("flag", form, _field_error(error))
        return _refused_new(Refusal(state, error_status(error)))
    return done(f"Flag {detail.flag.key} created, off in every environment.", "ui.flag_page",
                flag_key=detail.flag.key)  # fmt: skip


def _flag_and_key_result(
    data: dict[str, Any], problems: dict[str, list[str]], new_kr: bool
) -> tuple[dict[str, Any], NewKeyResult | None]:
    """The flag's fields and, when the form makes one, its new key result; all errors at once.

    :raise FormInvalidError: the flag or the new key result (or both) break a rule.
    """
    if not new_kr:
        return validate(FlagCreateSchema(), optional(data), problems), None
    errors = dict(problems)
    key_result = None
    try:
        key_result = new_key_result(request.form, NEW_KR_PREFIX)
    except FormInvalidError as error:
        errors |= error.errors
    data.pop("key_result_id", None)
    flag_schema = FlagCreateSchema(partial=("key_result_id",))
    fields = validate(flag_schema, optional(data), errors)  # raises with every error
    assert key_result is not None  # no error was raised, so it was read
    return fields, key_result


def _definition(form: Mapping[str, str], problems: dict[str, list[str]]) -> dict[str, Any]:
    """The editable fields of a flag as the API's schemas take them."""
    return {
        "name": text(form, "name"),
        "description": form.get("description", ""),
        "flow_item": text(form, "flow_item"),
        "key_result_id": whole_number(text(form, "key_result_id")),
    }


def _field_error(error: DomainError) -> dict[str, list[str]]:
    """A domain error shown at the field it names (a taken key, a missing key result)."""
    field = getattr(error, "field", None) or "_page"
    return {field: [getattr(error, "reason", error.message)]}


def _refused_new(refusal: Refusal) -> Any:
    return refuse(refusal, "ui.flag_new", lambda r: _flag_form_page(r.form, r.status))


def _flag_form_page(form: FormState, status: int, flag: Any = None) -> Any:
    with db().read() as session:
        seen = audit.chain_head(session).seq
        objectives = okrs.list_objectives(session, period=None, after=0, limit=MAX_OBJECTIVES)
        return render(
            "flags/form.html",
            status,
            section="ui.flag_list",
            form=form,
            flag=flag,
            objectives=objectives,
            objective_options=objective_options(objectives),
            period_options=periods.period_choices(state().clock(), {o.period for o in objectives}),
            this_quarter=periods.current_quarter(state().clock()),
            flow_item_options=FLOW_ITEM_OPTIONS,
            type_options=values.TYPE_OPTIONS,
            rows=values.editor_rows(form, None, "flag"),
            seen=seen,
        )


@bp.get("/flags/<flag_key>")
def flag_page(flag_key: str) -> Any:
    """One flag: key result, stage per environment, cohorts, readiness, history."""
    refused = refusals.take()
    if refused is not None:  # a refused change on this page, redirected here to be shown
        return render_flag_page(flag_key, refused.form, refused.status, refused.problem)
    return render_flag_page(flag_key)


def render_flag_page(
    flag_key: str, form: FormState | None = None, status: int = 200, problem: str | None = None
) -> Any:
    """The flag page, possibly re-shown with a refused form and the reason.

    A refused stage move or kill switch shows its reason in its environment's card,
    next to the button that was pressed; the banner then only points there.
    """
    with db().read() as session:
        context = flag_context(session, flag_key)
        where = _environment_of(form) if problem else None
        rows = values.editor_rows(form or FormState(), context["values"])
        return render("flags/detail.html", status, **context, form=form, problem=problem,
                      problem_at=where, conflict=status == 412, rows=rows)  # fmt: skip


def _environment_of(form: FormState | None) -> str | None:
    """The environment whose card holds ``form`` (``stage-<env>``, ``cohorts-<env>``, …)."""
    kind, _, environment = (form.name if form else "").partition("-")
    return environment if kind in CARD_FORMS and environment else None


def flag_context(session: Session, flag_key: str) -> dict[str, Any]:
    """Everything the flag page shows, read in one unit of work."""
    detail = flags.get_flag_detail(session, flag_key)
    envs = environments.list_environments(session)
    key_result = okrs.get_key_result(session, detail.flag.key_result_id)
    states = flag_states.in_every_environment(session, detail, envs)
    labels = {i.item_key: i.label for i in detail.flag.readiness_items}
    return {
        "section": "ui.flag_list",
        "detail": detail,
        "flag": detail.flag,
        "states": states,
        "plans": {s.state.environment.key: next_steps.plan(s, labels) for s in states},
        "audit_head": audit.chain_head(session).seq,
        "key_result": key_result,
        "view": measured.views(session, [key_result], state().clock())[0],
        "objective": okrs.get_objective(session, detail.objective_id),
        "all_cohorts": cohorts.list_cohorts(session, 0, 500),
        "labels": labels,
        "waivers": readiness.waivers(session, flag_key),
        "history": _history(session, flag_key, detail.flag),
        "history_limit": HISTORY_LIMIT,
        "timeline": timing.flag_timeline(session, flag_key),
        "snippets": snippets(request.url_root, flag_key, detail.flag.value_type),
        "evidence": _evidence(session, detail.flag, envs),
        "reach": reach.reach_by_environment(session, flag_key, state().clock()),
        "reach_warning_percent": state().config.reach_warning_percent,
        **_values_context(detail.flag, states),
    }


def _evidence(session: Session, flag: Any, envs: Any) -> list[tuple[Any, Any, int]]:
    """Per environment the SDKs reported from: early-adopter evidence and all evaluations
    (the evidence read only where there were evaluations: elsewhere it is not shown)."""
    totals = sdk_metrics.evaluation_stats(session, flag.key)
    rows = []
    for env in envs:
        evaluations = totals.get(env.key, {}).get("count", 0)
        if evaluations:
            found = early_adopters.evidence(session, env.id, [flag.id], state().early_adopters)
            rows.append((env, found[flag.id], evaluations))
    return rows


def _values_context(flag: Any, states: list[flag_states.FlagStateDetail]) -> dict[str, Any]:
    """The flag's values, the editor's rows and who gets which value in each environment."""
    stored = flags.variation_set(flag)
    return {
        "values": stored,
        "value_help": values.VALUE_HELP.get(stored.value_type, ""),
        "shown": values.shown,
        "audiences": {s.state.environment.key: values.audiences(s, stored) for s in states},
    }


def _history(session: Session, flag_key: str, flag: Any) -> list[tuple[Any, history.Entry]]:
    """The flag's latest changes, newest first, in words (items by their labels)."""
    labels = {item.item_key: item.label for item in flag.readiness_items}
    query = audit.AuditQuery(flag_key=flag_key, newest_first=True)
    events = audit.query(session, query, HISTORY_LIMIT)
    return [(e, history.describe(e, lambda key: labels.get(key, key))) for e in events]


@bp.get("/flags/<flag_key>/edit")
@permission_required(Permission.EDIT_FLAGS)
def flag_edit(flag_key: str) -> Any:
    """The form to change a flag's name, description, flow item and key result."""
    with db().read() as session:
        flag = flags.get_flag(session, flag_key)
    refused = refusals.take()
    if refused is not None:
        return _flag_form_page(refused.form, refused.status, flag)
    return _flag_form_page(FormState("flag", _current(flag)), 200, flag)


def _current(flag: Any) -> dict[str, Any]:
    return {
        "name": flag.name,
        "description": flag.description,
        "flow_item": flag.flow_item,
        "key_result_id": flag.key_result_id,
        "version": flag.version,
    }


@bp.post("/flags/<flag_key>/edit")
@permission_required(Permission.EDIT_FLAGS)
def flag_update(flag_key: str) -> Any:
    """Save a flag's definition unless someone else saved it meanwhile (no lost update)."""
    form = request.form
    problems: dict[str, list[str]] = {}
    guard = version_guard("flag", form.get("version"))
    try:
        fields = validate(FlagPatchSchema(), _definition(form, problems), problems)
        with db().write() as session:
            flags.update_flag(session, change(), flag_key, fields, precondition=guard)
    except FormInvalidError as error:
        return _refused_edit(flag_key, FormState("flag", form, error.errors), 422)
    except StaleVersionError:
        said = changed_since(form.get("seen"), flag_key=flag_key, environment="")
        return _refused_edit(flag_key, FormState("flag", form, {PAGE: [said]}), 412)
    except DomainError as error:
        state = FormState("flag", form, _field_error(error))
        return _refused_edit(flag_key, state, error_status(error))
    return done("Flag saved.", "ui.flag_page", flag_key=flag_key)


def _refused_edit(flag_key: str, form: FormState, status: int) -> Any:
    def in_place(refusal: Refusal) -> Any:
        with db().read() as session:
            flag = flags.get_flag(session, flag_key)
        return _flag_form_page(refusal.form, refusal.status, flag)

    return refuse(Refusal(form, status), "ui.flag_edit", in_place, flag_key=flag_key)


@bp.post("/flags/<flag_key>/archive")
@permission_required(Permission.EDIT_FLAGS)
def flag_archive(flag_key: str) -> Any:
    """Archive a flag that serves nobody (hidden from lists, kept in the audit)."""
    try:
        with db().write() as session:
            flags.archive_flag(session, change(), flag_key)
    except DomainError as error:
        refusal = Refusal(
            FormState("archive", request.form, {}), error_status(error), error.message
        )
        return refuse(refusal, "ui.flag_page", _shown_again(flag_key), flag_key=flag_key)
    return done(f"Flag {flag_key} archived: hidden from lists, its history kept.",
                "ui.flag_page", flag_key=flag_key)  # fmt: skip


@bp.post("/flags/<flag_key>/unarchive")
@permission_required(Permission.EDIT_FLAGS)
def flag_unarchive(flag_key: str) -> Any:
    """Bring an archived flag back into the lists."""
    with db().write() as session:
        flags.unarchive_flag(session, change(), flag_key)
    return done(f"Flag {flag_key} restored.", "ui.flag_page", flag_key=flag_key)


def _shown_again(flag_key: str) -> Callable[[Refusal], Any]:
    def in_place(refusal: Refusal) -> Any:
        return render_flag_page(flag_key, refusal.form, refusal.status, refusal.problem)

    return in_place


def redirect_to_flag(flag_key: str, message: str, anchor: str = "") -> Response:
    """Back to the flag page (at an environment's section) with a confirmation."""
    return done(message, "ui.flag_page", flag_key=flag_key, _anchor=anchor or None)
