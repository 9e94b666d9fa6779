"""Per-environment controls on the flag page: stage and ramp, kill switch, cohorts, exclusions.

Engineers and admins only (``MOVE_STAGES``), exactly like the API: a marketing user
sees none of these buttons, and a POST they forge anyway is answered 403. A refused
move (409: readiness missing, or already there) re-shows the flag page with the reason
in words, naming the readiness items by their labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import request
from marshmallow import Schema
from sqlalchemy.orm import Session

from flagsvc.domain.errors import DomainError
from flagsvc.domain.errors import ReadinessRequiredError
from flagsvc.domain.errors import StaleVersionError
from flagsvc.domain.roles import Permission
from flagsvc.domain.stages import Stage
from flagsvc.services import flag_states
from flagsvc.services import flags
from flagsvc.services.context import Change
from flagsvc.services.flag_states import Where
from flagsvc.ui import bp
from flagsvc.ui.auth import change
from flagsvc.ui.auth import permission_required
from flagsvc.ui.flags import redirect_to_flag
from flagsvc.ui.flags import render_flag_page
from flagsvc.ui.forms import FormInvalidError
from flagsvc.ui.forms import FormState
from flagsvc.ui.forms import collapse
from flagsvc.ui.forms import dedupe
from flagsvc.ui.forms import lines
from flagsvc.ui.forms import number
from flagsvc.ui.forms import optional
from flagsvc.ui.forms import text
from flagsvc.ui.forms import validate
from flagsvc.ui.forms import version_guard
from flagsvc.ui.history import changed_since
from flagsvc.ui.pages import error_status
from flagsvc.ui.pages import refuse
from flagsvc.ui.refusals import Refusal
from flagsvc.ui.values import cohort_choices
from flagsvc.web.context import db
from flagsvc.web.shapes.flag_states import FlagCohortsSchema
from flagsvc.web.shapes.flag_states import FlagExclusionsSchema
from flagsvc.web.shapes.flag_states import FlagStageMoveSchema

STATE = "/flags/<flag_key>/environments/<env>"
Command = Callable[[Session, Change], object]


def _run(flag_key: str, env: str, form_name: str, command: Command, message: str) -> Any:
    """Run one state command; on refusal re-show the flag page with the reason."""
    try:
        with db().write() as session:
            command(session, change())
    except DomainError as error:
        form = FormState(f"{form_name}-{env}", request.form, _field_errors(error))
        problem = _problem(flag_key, env, error)
        return refuse_on_flag_page(flag_key, env, Refusal(form, error_status(error), problem))
    return redirect_to_flag(flag_key, message, f"env-{env}")


def refuse_on_flag_page(flag_key: str, env: str, refusal: Refusal) -> Any:
    """Back to the flag page at the environment's card, showing why (post/redirect/get)."""

    def in_place(shown: Refusal) -> Any:
        return render_flag_page(flag_key, shown.form, shown.status, shown.problem)

    return refuse(refusal, "ui.flag_page", in_place, flag_key=flag_key, _anchor=f"env-{env}")


def _field_errors(error: DomainError) -> dict[str, list[str]]:
    field = getattr(error, "field", None)
    return {field: [getattr(error, "reason", error.message)]} if field else {}


def _problem(flag_key: str, env: str, error: DomainError) -> str:
    """The refusal in words; missing readiness items by their labels, not their keys; a
    conflict says what changed since the page was shown."""
    if isinstance(error, StaleVersionError):
        return changed_since(request.form.get("seen"), flag_key=flag_key, environment=env)
    if not isinstance(error, ReadinessRequiredError):
        return error.message
    with db().read() as session:
        items = {i.item_key: i.label for i in flags.get_flag(session, flag_key).readiness_items}
    missing = ", ".join(items.get(key, key) for key in error.missing)
    return (
        "General rollout waits for launch readiness in this environment. "
        f"Still to do (marketing / customer success): {missing}."
    )


def _refused(flag_key: str, env: str, form_name: str, error: FormInvalidError) -> Any:
    form = FormState(f"{form_name}-{env}", request.form, error.errors)
    return refuse_on_flag_page(flag_key, env, Refusal(form, 422))


@bp.post(f"{STATE}/stage")
@permission_required(Permission.MOVE_STAGES)
def stage_move(flag_key: str, env: str) -> Any:
    """Move to a stage or ramp general rollout (the same stage machine as the API)."""
    data = optional({"stage": text(request.form, "stage")})
    if data.get("stage") == Stage.GENERAL.value:  # one form, many buttons: only general ramps
        data |= optional({"rollout_percent": number(text(request.form, "rollout_percent"))})
    try:
        move = validate(FlagStageMoveSchema(), data, {})
    except FormInvalidError as error:
        return _refused(flag_key, env, "stage", error)
    stage, percent = Stage(move["stage"]), move.get("rollout_percent")

    def command(session: Session, who: Change) -> object:
        return flag_states.move_stage(session, who, Where(flag_key, env), stage, percent)

    return _run(flag_key, env, "stage", command, _moved(stage, percent, env))


def _moved(stage: Stage, percent: Any, env: str) -> str:
    if stage is Stage.GENERAL and percent is not None:
        return f"General rollout in {env} is now at {percent:g}%."
    return f"Now {stage.value.replace('_', ' ')} in {env}."


@bp.post(f"{STATE}/kill")
@permission_required(Permission.MOVE_STAGES)
def kill(flag_key: str, env: str) -> Any:
    """Switch the flag off for everyone in this environment at once."""
    return _kill_switch(flag_key, env, killed=True)


@bp.post(f"{STATE}/resume")
@permission_required(Permission.MOVE_STAGES)
def resume(flag_key: str, env: str) -> Any:
    """Undo the kill switch: the flag serves its stage again."""
    return _kill_switch(flag_key, env, killed=False)


def _kill_switch(flag_key: str, env: str, *, killed: bool) -> Any:
    def command(session: Session, who: Change) -> object:
        return flag_states.set_killed(session, who, Where(flag_key, env), killed)

    message = f"Killed in {env}: off for everyone." if killed else f"Resumed in {env}."
    return _run(flag_key, env, "kill", command, message)


@dataclass(frozen=True, slots=True)
class _ListForm:
    """A form that replaces one list of a flag state, validated by the API's schema."""

    section: str  # the flag page's card that shows the outcome
    field: str
    schema: Schema
    setter: Callable[..., object]  # the service: (session, change, where, values, guard)


_COHORTS = _ListForm("cohorts", "cohorts", FlagCohortsSchema(), flag_states.set_cohorts)
_EXCLUSIONS = _ListForm("exclusions", "users", FlagExclusionsSchema(), flag_states.set_exclusions)


@bp.post(f"{STATE}/cohorts")
@permission_required(Permission.MOVE_STAGES)
def set_cohorts(flag_key: str, env: str) -> Any:
    """Choose the early-access cohorts and, for a typed flag, the variation each serves
    (guarded by the version the page showed)."""
    chosen = request.form.getlist("cohorts")
    saved = f"Early-access cohorts in {env} saved."
    own = cohort_choices(request.form, chosen)
    where = Where(flag_key, env)
    if not own:
        return _save_list(_COHORTS, where, chosen, saved)
    try:
        data = validate(FlagCohortsSchema(), {"cohorts": chosen, "variations": own}, {})
    except FormInvalidError as error:
        error.errors = collapse(error.errors, "cohorts", chosen)
        return _refused(flag_key, env, "cohorts", error)
    guard = version_guard("flag state", request.form.get("version"))

    def command(session: Session, who: Change) -> object:
        return flag_states.set_cohorts(
            session, who, where, data["cohorts"], guard, own_variations=data["variations"]
        )

    return _run(flag_key, env, "cohorts", command, saved)


@bp.post(f"{STATE}/exclusions")
@permission_required(Permission.MOVE_STAGES)
def set_exclusions(flag_key: str, env: str) -> Any:
    """Replace the users who never get the flag here (one user key per line)."""
    users = dedupe(lines(request.form.get("users", "")))
    return _save_list(_EXCLUSIONS, Where(flag_key, env), users, f"Exclusions in {env} saved.")


def _save_list(form: _ListForm, where: Where, values: list[str], saved: str) -> Any:
    """Validate like the API does, then replace the list under the page's version."""
    flag_key, env = where.flag_key, where.environment
    try:
        data = validate(form.schema, {form.field: values}, {})
    except FormInvalidError as error:
        error.errors = collapse(error.errors, form.field, values)
        return _refused(flag_key, env, form.section, error)
    guard = version_guard("flag state", request.form.get("version"))

    def command(session: Session, who: Change) -> object:
        return form.setter(session, who, where, data[form.field], guard)

    return _run(flag_key, env, form.section, command, saved)
