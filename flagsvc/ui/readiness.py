"""Launch readiness for marketing and customer success: checklists, launches, what waits.

One click per item (with a note); the flag becomes ready when every required item is
done, and a launch can then be scheduled where the flag is in early access. Engineers
read these pages but cannot tick anything (``MARK_READINESS``), as in the API. With
htmx a tick swaps only the checklist; without it the form posts and the page reloads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from datetime import timedelta
from typing import Any

from flask import request
from sqlalchemy.orm import Session

from flagsvc.domain.errors import DomainError
from flagsvc.domain.roles import Permission
from flagsvc.domain.stages import Stage
from flagsvc.services import environments
from flagsvc.services import flag_states
from flagsvc.services import flags
from flagsvc.services import launches
from flagsvc.services import readiness
from flagsvc.services.flag_states import Where
from flagsvc.ui import bp
from flagsvc.ui import refusals
from flagsvc.ui import timing
from flagsvc.ui.auth import change
from flagsvc.ui.auth import permission_required
from flagsvc.ui.forms import PAGE
from flagsvc.ui.forms import FormInvalidError
from flagsvc.ui.forms import FormState
from flagsvc.ui.forms import bounded
from flagsvc.ui.forms import number
from flagsvc.ui.forms import optional
from flagsvc.ui.forms import text
from flagsvc.ui.forms import utc_text
from flagsvc.ui.forms import validate
from flagsvc.ui.pages import done
from flagsvc.ui.pages import error_status
from flagsvc.ui.pages import is_htmx
from flagsvc.ui.pages import refuse
from flagsvc.ui.pages import render
from flagsvc.ui.refusals import Refusal
from flagsvc.web.context import db
from flagsvc.web.context import state as app_state
from flagsvc.web.shapes.flag_states import FlagLaunchSchema
from flagsvc.web.shapes.readiness import ReadinessChecklistSchema
from flagsvc.web.shapes.readiness import ReadinessMarkSchema

LAUNCH_RAMPS = [("10", "10 %"), ("25", "25 %"), ("50", "50 %"), ("100", "100 % (everyone)")]
BOARD_LIMIT = 500  # flags a board lists; beyond that, the flag list's filters help
BLANK_ITEM_ROWS = 2
MAX_ROWS = 100  # editor rows read from a form (the API allows 30 items)

BOOLEANS = {"true": True, "false": False}
"""Form text → the JSON boolean the API schema takes."""


@bp.get("/readiness")
def readiness_board() -> Any:
    """What marketing owes: finished features held for readiness, and ready ones to launch."""
    with db().read() as session:
        in_early_access = flags.list_flags(
            session, flags.FlagQuery(stage=Stage.EARLY_ACCESS.value), BOARD_LIMIT
        )
        waiting = [d for d in in_early_access if not d.ready]
        ready = [d for d in in_early_access if d.ready and _launchable_somewhere(d)]
        return render(
            "readiness/board.html",
            section="ui.readiness_board",
            waiting=waiting,
            ready=ready,
            scheduled=_scheduled(in_early_access),
            waits=timing.readiness_waits(session, [d.flag.key for d in waiting]),
            environments=environments.list_environments(session),
        )


def _scheduled(details: list[flags.FlagDetail]) -> list[tuple[flags.FlagDetail, Any]]:
    """Each scheduled launch (a flag, one environment's state), soonest first: a flag
    with a launch date has left "Ready to launch" and must not vanish from the board."""
    found = [(d, s) for d in details for s in d.states if s.launch_at is not None]
    return sorted(found, key=lambda pair: (pair[1].launch_at, pair[0].flag.key))


def _launchable_somewhere(detail: flags.FlagDetail) -> bool:
    """In early access in some gated environment with no launch scheduled yet."""
    return any(
        s.stage == Stage.EARLY_ACCESS.value and s.environment.gated and s.launch_at is None
        for s in detail.states
    )


@bp.get("/flags/<flag_key>/readiness")
def readiness_page(flag_key: str) -> Any:
    """A flag's checklist, one click per item, and its launch per environment."""
    refused = refusals.take()
    if refused is not None:
        return _render_checklist(flag_key, refused.form, refused.status, refused.problem)
    return _render_checklist(flag_key)


def _refused(flag_key: str, refusal: Refusal, anchor: str | None = None) -> Any:
    """A refused readiness form back on the flag's checklist (post/redirect/get)."""

    def in_place(shown: Refusal) -> Any:
        return _render_checklist(flag_key, shown.form, shown.status, shown.problem)

    return refuse(refusal, "ui.readiness_page", in_place, flag_key=flag_key, _anchor=anchor)


def _render_checklist(
    flag_key: str,
    form: FormState | None = None,
    status: int = 200,
    problem: str | None = None,
    notice: str | None = None,
) -> Any:
    with db().read() as session:
        context = _checklist_context(session, flag_key)
        return render(
            "readiness/flag.html", status, **context, form=form, problem=problem, notice=notice
        )


def _checklist_context(session: Session, flag_key: str) -> dict[str, Any]:
    detail = flags.get_flag_detail(session, flag_key)
    now = app_state().clock()
    envs = environments.list_environments(session)
    return {
        "section": "ui.readiness_board",
        "detail": detail,
        "flag": detail.flag,
        "items": detail.flag.readiness_items,
        "states": flag_states.in_every_environment(session, detail, envs),
        "blank_rows": BLANK_ITEM_ROWS,
        "launch_ramps": LAUNCH_RAMPS,
        "waivers": readiness.waivers(session, flag_key),
        "now_utc": _shown(now),
        # tomorrow at the next full hour: a valid time to start from, in the pages' format
        "suggested_launch": (now + timedelta(days=1, hours=1)).strftime("%Y-%m-%d %H:00"),
    }


@bp.post("/flags/<flag_key>/readiness/<item_key>")
@permission_required(Permission.MARK_READINESS)
def readiness_mark(flag_key: str, item_key: str) -> Any:
    """Mark one item done or not done, with an optional note."""
    sent = text(request.form, "done")  # the API takes JSON booleans only
    data = {"done": BOOLEANS.get(sent, sent), "note": request.form.get("note", "")}
    form_name = f"item-{item_key}"
    try:
        fields = validate(ReadinessMarkSchema(), data, {})
        with db().write() as session:
            flag = readiness.mark_item(session, change(), flag_key, item_key, fields)
            now_ready = flag.ready_at is not None
    except FormInvalidError as error:
        return _refused(flag_key, Refusal(FormState(form_name, request.form, error.errors), 422))
    except DomainError as error:
        state = FormState(form_name, request.form, {})
        return _refused(flag_key, Refusal(state, error_status(error), error.message))
    message = _marked(fields["done"], now_ready)
    if is_htmx():
        return _render_checklist(flag_key, notice=message)
    return done(message, "ui.readiness_page", flag_key=flag_key)


def _marked(is_done: bool, ready: bool) -> str:
    if ready:
        return "Item done. Every required item is done: the flag is ready to launch."
    return "Item marked done." if is_done else "Item marked not done."


@bp.post("/flags/<flag_key>/readiness")
@permission_required(Permission.MARK_READINESS)
def readiness_checklist(flag_key: str) -> Any:
    """Replace the checklist's items (kept items keep their state and note)."""
    items = _item_rows(request.form)
    try:
        data = validate(ReadinessChecklistSchema(), {"items": items}, {})
        with db().write() as session:
            readiness.set_checklist(session, change(), flag_key, data["items"])
    except FormInvalidError as error:
        errors = {("items-rows" if k in ("items", PAGE) else k): v for k, v in error.errors.items()}
        return _refused(flag_key, Refusal(FormState("checklist", request.form, errors), 422))
    except DomainError as error:
        state = FormState("checklist", request.form, {})
        return _refused(flag_key, Refusal(state, error_status(error), error.message))
    return done("Checklist saved.", "ui.readiness_page", flag_key=flag_key)


def _item_rows(form: Mapping[str, str]) -> list[dict[str, Any]]:
    """The editor's rows as the API's items; rows without a label are left out.

    The editor shows labels only (marketing never sees item keys): an item keeps its
    key (a hidden field), a new one gets a key made from its label.
    """
    count = bounded(form.get("rows"), 2**31) or 0
    rows: list[dict[str, Any]] = []
    for index in range(min(count, MAX_ROWS)):
        key, label = text(form, f"items-{index}-key"), text(form, f"items-{index}-label")
        if label:
            required = f"items-{index}-required" in form
            rows.append({"key": key, "label": label, "required": required})
    taken = {row["key"] for row in rows if row["key"]}
    for row in rows:
        if not row["key"]:
            row["key"] = _key_from_label(row["label"], taken)
            taken.add(row["key"])
    return rows


def _key_from_label(label: str, taken: set[str]) -> str:
    """A readiness-item key made from its label ("Sales briefed" -> ``sales_briefed``)."""
    base = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:60] or "item"
    key, number = base, 2
    while key in taken:
        key, number = f"{base}_{number}", number + 1
    return key


@bp.post("/flags/<flag_key>/environments/<env>/launch")
@permission_required(Permission.SCHEDULE_LAUNCH)
def launch_schedule(flag_key: str, env: str) -> Any:
    """Schedule general rollout of a ready flag already in early access (time in UTC)."""
    form_name, raw = f"launch-{env}", text(request.form, "launch_at")
    sent = optional(
        {
            "launch_at": utc_text(raw),
            "rollout_percent": number(text(request.form, "rollout_percent")),
        }
    )
    try:
        launch = validate(FlagLaunchSchema(), sent, {})
        launch_at, percent = launch["launch_at"], launch["rollout_percent"]
        with db().write() as session:
            launches.schedule_launch(session, change(), Where(flag_key, env), launch_at,
                                     rollout_percent=percent)  # fmt: skip
    except FormInvalidError as error:
        errors = dict(error.errors)
        if "launch_at" in errors:
            example = _shown(app_state().clock())[:-4]
            errors["launch_at"] = [f"Write the time as YYYY-MM-DD HH:MM in UTC, like {example}."]
        return _refused(flag_key, Refusal(FormState(form_name, request.form, errors), 422))
    except DomainError as error:
        reason = _launch_reason(error)
        state = FormState(form_name, request.form, {"launch_at": [reason]})
        return _refused(flag_key, Refusal(state, error_status(error), reason))
    return done(f"Launch in {env} scheduled for {_shown(launch_at)}: general rollout starts "
                f"at {percent:g} %.", "ui.readiness_page", flag_key=flag_key)  # fmt: skip


def _launch_reason(error: DomainError) -> str:
    """The refusal in words: a past time says so and what time it is now (in UTC)."""
    if getattr(error, "field", None) == "launch_at" and "future" in error.message:
        now = _shown(app_state().clock())
        return f"That time is already past: it is now {now}. Pick a later time."
    return str(getattr(error, "reason", error.message))


def _shown(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


@bp.post("/flags/<flag_key>/environments/<env>/launch/cancel")
@permission_required(Permission.SCHEDULE_LAUNCH)
def launch_cancel(flag_key: str, env: str) -> Any:
    """Cancel a scheduled launch."""
    try:
        with db().write() as session:
            launches.cancel_launch(session, change(), Where(flag_key, env))
    except DomainError as error:
        state = FormState(f"launch-{env}", request.form, {})
        return _refused(flag_key, Refusal(state, error_status(error), error.message), "launch")
    return done(f"Launch in {env} cancelled.", "ui.readiness_page", flag_key=flag_key)
