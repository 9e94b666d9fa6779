"""Editing and deleting objectives and key results on the OKR board.

Each form carries the version it was shown with (the UI's If-Match) and the audit head
it saw, so a save over someone else's is refused (412) saying what they changed. A
delete asks first, and is refused (409) while the row is in use: an objective with key
results, a key result a flag serves. Every answer is a redirect back to the board at
the objective (post/redirect/get), refused ones carrying the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import request

from flagsvc.domain.errors import DomainError
from flagsvc.domain.errors import StaleVersionError
from flagsvc.domain.roles import Permission
from flagsvc.services import okrs
from flagsvc.ui import bp
from flagsvc.ui.auth import change
from flagsvc.ui.auth import permission_required
from flagsvc.ui.forms import PAGE
from flagsvc.ui.forms import FormInvalidError
from flagsvc.ui.forms import FormState
from flagsvc.ui.forms import number
from flagsvc.ui.forms import optional
from flagsvc.ui.forms import text
from flagsvc.ui.forms import validate
from flagsvc.ui.forms import version_guard
from flagsvc.ui.history import changed_since
from flagsvc.ui.okrs import refused_on_board
from flagsvc.ui.pages import done
from flagsvc.ui.pages import error_status
from flagsvc.ui.refusals import Refusal
from flagsvc.web.context import db
from flagsvc.web.shapes.okrs import KeyResultPatchSchema
from flagsvc.web.shapes.okrs import ObjectivePatchSchema

OBJECTIVE_TEXTS = ("title", "period", "owner")
KEY_RESULT_TEXTS = ("title", "metric", "unit")


@bp.post("/okrs/objectives/<int:objective_id>/edit")
@permission_required(Permission.EDIT_OKRS)
def objective_edit(objective_id: int) -> Any:
    """Save an objective's title, period, owner, value stream and description."""
    form, name = request.form, f"obj-edit-{objective_id}"
    data: dict[str, Any] = {field: text(form, field) for field in OBJECTIVE_TEXTS}
    data["description"] = form.get("description", "")
    data["value_stream"] = text(form, "value_stream") or None
    guard = version_guard("objective", form.get("version"))

    def save() -> None:
        fields = validate(ObjectivePatchSchema(), data, {})
        with db().write() as session:
            okrs.update_objective(session, change(), objective_id, fields, guard)

    refused = _attempt(save, name, form, ("objective", str(objective_id)))
    if refused is not None:
        return refused
    return done("Objective saved.", "ui.okr_board", _anchor=f"objective-{objective_id}")


@bp.post("/okrs/objectives/<int:objective_id>/delete")
@permission_required(Permission.EDIT_OKRS)
def objective_delete(objective_id: int) -> Any:
    """Delete an objective without key results (the board offers it only then)."""
    form, name = request.form, f"obj-edit-{objective_id}"
    guard = version_guard("objective", form.get("version"))

    def delete() -> None:
        with db().write() as session:
            okrs.delete_objective(session, change(), objective_id, guard)

    refused = _attempt(delete, name, form, ("objective", str(objective_id)))
    if refused is not None:
        return refused
    return done("Objective deleted.", "ui.okr_board")


@bp.post("/okrs/key-results/<int:key_result_id>/edit")
@permission_required(Permission.EDIT_OKRS)
def key_result_edit(key_result_id: int) -> Any:
    """Save a key result's title, metric, unit, baseline and target."""
    form, name = request.form, f"kr-edit-{key_result_id}"
    data: dict[str, Any] = {field: text(form, field) for field in KEY_RESULT_TEXTS}
    data |= {field: number(text(form, field)) for field in ("baseline", "target")}
    guard = version_guard("key result", form.get("version"))
    objective_id = _objective_of(key_result_id)

    def save() -> None:
        fields = validate(KeyResultPatchSchema(), optional(data) | {"unit": data["unit"]}, {})
        with db().write() as session:
            okrs.update_key_result(session, change(), key_result_id, fields, guard)

    refused = _attempt(save, name, form, ("key_result", str(key_result_id)), objective_id)
    if refused is not None:
        return refused
    return done("Key result saved.", "ui.okr_board", _anchor=f"objective-{objective_id}")


@bp.post("/okrs/key-results/<int:key_result_id>/delete")
@permission_required(Permission.EDIT_OKRS)
def key_result_delete(key_result_id: int) -> Any:
    """Delete a key result no flag serves (the board offers it only then)."""
    form, name = request.form, f"kr-edit-{key_result_id}"
    guard = version_guard("key result", form.get("version"))
    objective_id = _objective_of(key_result_id)

    def delete() -> None:
        with db().write() as session:
            okrs.delete_key_result(session, change(), key_result_id, guard)

    refused = _attempt(delete, name, form, ("key_result", str(key_result_id)), objective_id)
    if refused is not None:
        return refused
    return done("Key result deleted.", "ui.okr_board", _anchor=f"objective-{objective_id}")


def _objective_of(key_result_id: int) -> int:
    """The objective a key result belongs to (404 page when there is no such key result)."""
    with db().read() as session:
        return okrs.get_key_result(session, key_result_id).objective_id


def _attempt(
    action: Any,
    name: str,
    form: Mapping[str, str],
    entity: tuple[str, str],
    objective_id: int | None = None,
) -> Any:
    """Run ``action``; a refusal goes back to the board at its objective, with the reason."""
    anchor = f"objective-{objective_id if objective_id is not None else entity[1]}"
    try:
        action()
    except FormInvalidError as error:
        return refused_on_board(Refusal(FormState(name, form, error.errors), 422), anchor)
    except StaleVersionError:
        said = changed_since(form.get("seen"), entity=entity)
        return refused_on_board(Refusal(FormState(name, form, {PAGE: [said]}), 412), anchor)
    except DomainError as error:
        field = getattr(error, "field", None)
        reason = getattr(error, "reason", error.message)
        errors = {field: [reason]} if field else {PAGE: [error.message]}
        return refused_on_board(Refusal(FormState(name, form, errors), error_status(error)), anchor)
    return None
