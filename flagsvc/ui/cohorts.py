"""Cohort pages: the list, the rule editor with its live preview, and member import.

Members are pasted (one user key per line) or uploaded as CSV (first column; a header
row named ``user_key``, ``key``, ``user``, ``user_id`` or ``id`` is skipped) and sent
through the same bulk service as ``POST /api/v1/cohorts/<key>/members``: one audit
event per import, however many keys.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import request
from sqlalchemy.orm import Session

from flagsvc.domain.catch_all import catch_all_reason
from flagsvc.domain.errors import DomainError
from flagsvc.domain.errors import StaleVersionError
from flagsvc.domain.roles import Permission
from flagsvc.services import audit
from flagsvc.services import cohorts
from flagsvc.ui import bp
from flagsvc.ui import refusals
from flagsvc.ui import rules
from flagsvc.ui.auth import change
from flagsvc.ui.auth import permission_required
from flagsvc.ui.forms import PAGE
from flagsvc.ui.forms import FormInvalidError
from flagsvc.ui.forms import FormState
from flagsvc.ui.forms import bounded
from flagsvc.ui.forms import collapse
from flagsvc.ui.forms import dedupe
from flagsvc.ui.forms import lines
from flagsvc.ui.forms import text
from flagsvc.ui.forms import validate
from flagsvc.ui.forms import version_guard
from flagsvc.ui.history import changed_since
from flagsvc.ui.pages import done
from flagsvc.ui.pages import error_status
from flagsvc.ui.pages import is_htmx
from flagsvc.ui.pages import refuse
from flagsvc.ui.pages import render
from flagsvc.ui.refusals import Refusal
from flagsvc.web.context import db
from flagsvc.web.shapes.cohorts import CohortCreateSchema
from flagsvc.web.shapes.cohorts import CohortPatchSchema
from flagsvc.web.shapes.cohorts import MembersEditSchema

LIST_LIMIT = 500
MEMBERS_SHOWN = 100
MAX_MEMBER_SEARCH = 256  # characters of a member search (a user key's most)
PREVIEW_MEMBER_LIMIT = 20_000  # saved members the preview reads; bigger cohorts: rules only
CSV_HEADERS = frozenset({"user_key", "key", "user", "user_id", "id"})


@bp.app_template_global("catch_all")
def catch_all(rules: Sequence[Mapping[str, Any]]) -> str | None:
    """Why a cohort's rules are a catch-all (``domain/catch_all``), for the pages."""
    return catch_all_reason(rules)


@bp.get("/cohorts")
def cohort_list() -> Any:
    """Every cohort with its size and how many flag environments use it."""
    with db().read() as session:
        rows = cohorts.list_cohorts(session, 0, LIST_LIMIT)
        counts = cohorts.member_counts(session, [c.id for c in rows])
        usage = {c.id: cohorts.used_by(session, c.id) for c in rows}
        return render("cohorts/list.html", section="ui.cohort_list", rows=rows,
                      counts=counts, usage=usage)  # fmt: skip


@bp.get("/cohorts/new")
@permission_required(Permission.EDIT_COHORTS)
def cohort_new() -> Any:
    """The form for a new cohort: rules, opt-in and first members."""
    refused = refusals.take()
    if refused is not None:
        return _new_page(refused.form, refused.status)
    return _new_page(FormState(), 200)


def _refused_new(refusal: Refusal) -> Any:
    return refuse(refusal, "ui.cohort_new", lambda r: _new_page(r.form, r.status))


def _refused(cohort_key: str, refusal: Refusal) -> Any:
    """A refused change back on the cohort's page (post/redirect/get)."""

    def in_place(shown: Refusal) -> Any:
        return _cohort_page(cohort_key, shown.form, shown.status)

    return refuse(refusal, "ui.cohort_page", in_place, cohort_key=cohort_key)


def _new_page(form: FormState, status: int, result: rules.Preview | None = None) -> Any:
    return render("cohorts/new.html", status, section="ui.cohort_list", form=form,
                  rule_rows=_rows(form), op_options=rules.OP_OPTIONS, preview=result)  # fmt: skip


def _rows(form: FormState, saved: list[dict[str, Any]] | None = None) -> list[dict[str, str]]:
    """Editor rows: what was sent (on a re-render), else the saved rules plus blanks."""
    if not form.name:
        return rules.rows_for(saved or [])
    sent = str(form.values.get("rule_rows", ""))
    count = min(bounded(sent, 2**31) or 0, rules.MAX_RULE_ROWS)
    fields = ("attribute", "op", "values")
    return [{f: form.values.get(f"rules-{i}-{f}", "") for f in fields} for i in range(count)]


@bp.post("/cohorts")
@permission_required(Permission.EDIT_COHORTS)
def cohort_create() -> Any:
    """Create a cohort, and import its first members in the same transaction."""
    form = request.form
    try:
        spec = _checked(CohortCreateSchema(), form, {"key": text(form, "key")})
        members = _member_keys(form)
        with db().write() as session:
            cohort = cohorts.create_cohort(session, change(), cohorts.CohortSpec(**spec))
            if members:
                cohorts.change_members(session, change(), cohort.key, members, [])
    except FormInvalidError as error:
        return _refused_new(Refusal(FormState("cohort", form, error.errors), 422))
    except DomainError as error:
        state = FormState("cohort", form, _field_error(error, "members"))
        return _refused_new(Refusal(state, error_status(error)))
    return done(f"Cohort {cohort.key} created.", "ui.cohort_page", cohort_key=cohort.key)


def _checked(
    schema: Any,
    form: Mapping[str, str],
    extra: Mapping[str, Any] | None = None,
    only_rules: bool = False,
) -> dict[str, Any]:
    """The cohort form checked by the API's ``schema``; rule errors on the rows typed.

    :raise FormInvalidError: with each rule's reasons at the form row it came from.
    """
    sent, rows = rules.sent_rules(form)
    data = {"rules": sent} if only_rules else _definition(form, sent) | dict(extra or {})
    try:
        return dict(validate(schema, data, {}))
    except FormInvalidError as error:
        raise FormInvalidError(rules.placed_errors(error.errors, sent, rows)) from error


def _definition(form: Mapping[str, str], sent: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": text(form, "name"),
        "description": form.get("description", ""),
        "rules": sent,
        "opt_in": "opt_in" in form,
    }


def _field_error(error: DomainError, list_field: str) -> dict[str, list[str]]:
    field = getattr(error, "field", None) or PAGE
    field = list_field if field in ("add", "remove") else field
    return {field: [getattr(error, "reason", error.message)]}


def _member_keys(form: Mapping[str, str]) -> list[str]:
    """Pasted and uploaded user keys, checked by the API's bulk schema."""
    keys = dedupe(lines(form.get("members", "")) + _uploaded_keys())
    if not keys:
        return []
    try:
        return list(validate(MembersEditSchema(), {"add": keys}, {})["add"])
    except FormInvalidError as error:
        raise FormInvalidError(collapse(_as_members(error.errors), "members", keys)) from error


def _as_members(errors: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The schema's ``add-3`` errors belong to the form's ``members`` box."""
    return {
        ("members" + key.removeprefix("add") if key.startswith("add") else key): reasons
        for key, reasons in errors.items()
    }


def _uploaded_keys() -> list[str]:
    """User keys from an uploaded CSV: the first column, without a header row."""
    upload = request.files.get("members_file")
    if upload is None or not upload.filename:
        return []
    try:
        content = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FormInvalidError({"members_file": ["The file must be UTF-8 text (CSV)."]}) from error
    try:  # splitlines: CR-only files (old Macs, some exporters) are lines too
        rows = list(csv.reader(content.splitlines()))
    except csv.Error as error:  # a field past csv.field_size_limit() (128 KiB), …
        reason = f"This file could not be read as CSV ({error})."
        raise FormInvalidError({"members_file": [reason]}) from error
    keys = [row[0].strip() for row in rows if row and row[0].strip()]
    return keys[1:] if keys and keys[0].lower() in CSV_HEADERS else keys


@bp.get("/cohorts/<cohort_key>")
def cohort_page(cohort_key: str) -> Any:
    """One cohort: its rules (editable by engineers), size, members and where it is used."""
    refused = refusals.take()
    if refused is not None:
        return _cohort_page(cohort_key, refused.form, refused.status)
    return _cohort_page(cohort_key, FormState(), 200)


def _cohort_page(
    cohort_key: str, form: FormState, status: int, result: rules.Preview | None = None
) -> Any:
    with db().read() as session:
        context = _cohort_context(session, cohort_key)
        saved = list(context["cohort"].rules)
        return render("cohorts/detail.html", status, **context, form=form, preview=result,
                      rule_rows=_rows(form, saved), op_options=rules.OP_OPTIONS)  # fmt: skip


def _cohort_context(session: Session, cohort_key: str) -> dict[str, Any]:
    cohort = cohorts.get_cohort(session, cohort_key)
    return {
        "section": "ui.cohort_list",
        "cohort": cohort,
        "seen": audit.chain_head(session).seq,
        "member_count": cohorts.member_count(session, cohort.id),
        "used_by": cohorts.used_by(session, cohort.id),
        **_members_shown(session, cohort_key),
    }


@dataclass(frozen=True, slots=True)
class MemberPages:
    """Which page of a member search is shown, of how many, and the rows it spans."""

    number: int
    count_pages: int
    total: int

    @property
    def first(self) -> int:
        return (self.number - 1) * MEMBERS_SHOWN + 1

    @property
    def last(self) -> int:
        return min(self.number * MEMBERS_SHOWN, self.total)


def _members_shown(session: Session, cohort_key: str) -> dict[str, Any]:
    """The page of members the address asks for (``member_q``, ``member_page``).

    A page number that is not one, or past the last page, shows the nearest page:
    these only choose what to show, and a search narrowing a list moves its end.
    """
    search = request.args.get("member_q", "").replace("\x00", "").strip()[:MAX_MEMBER_SEARCH]
    asked = max(bounded(request.args.get("member_page"), 2**31) or 1, 1)
    rows = cohorts.search_members(session, cohort_key, search, _offset(asked), MEMBERS_SHOWN)
    count_pages = max(1, -(-rows.found // MEMBERS_SHOWN))
    if asked > count_pages:
        asked = count_pages
        rows = cohorts.search_members(session, cohort_key, search, _offset(asked), MEMBERS_SHOWN)
    pages = MemberPages(asked, count_pages, rows.found)
    return {"members": rows.members, "member_q": search, "member_pages": pages}


def _offset(page: int) -> int:
    return (page - 1) * MEMBERS_SHOWN


@bp.post("/cohorts/<cohort_key>")
@permission_required(Permission.EDIT_COHORTS)
def cohort_update(cohort_key: str) -> Any:
    """Save name, description, rules and opt-in unless someone else saved meanwhile."""
    form = request.form
    guard = version_guard("cohort", form.get("version"))
    try:
        fields = _checked(CohortPatchSchema(), form)
        with db().write() as session:
            cohorts.update_cohort(session, change(), cohort_key, fields, precondition=guard)
    except FormInvalidError as error:
        return _refused(cohort_key, Refusal(FormState("cohort", form, error.errors), 422))
    except StaleVersionError:
        said = changed_since(form.get("seen"), entity=("cohort", cohort_key))
        return _refused(cohort_key, Refusal(FormState("cohort", form, {PAGE: [said]}), 412))
    except DomainError as error:
        state = FormState("cohort", form, _field_error(error, "members"))
        return _refused(cohort_key, Refusal(state, error_status(error)))
    return done("Cohort saved.", "ui.cohort_page", cohort_key=cohort_key)


@bp.post("/cohorts/<cohort_key>/delete")
@permission_required(Permission.EDIT_COHORTS)
def cohort_delete(cohort_key: str) -> Any:
    """Delete a cohort no flag uses (the page offers it only then; a race answers 409)."""
    try:
        with db().write() as session:
            cohorts.delete_cohort(session, change(), cohort_key)
    except DomainError as error:
        state = FormState("delete", request.form, {PAGE: [error.message]})
        return _refused(cohort_key, Refusal(state, error_status(error)))
    return done(f"Cohort {cohort_key} deleted.", "ui.cohort_list")


@bp.post("/cohorts/<cohort_key>/members")
@permission_required(Permission.EDIT_COHORTS)
def cohort_members(cohort_key: str) -> Any:
    """Add or remove pasted / uploaded members in bulk (idempotent, one audit event)."""
    form = request.form
    removing = form.get("mode") == "remove"
    try:
        keys = _member_keys(form)
        if not keys:
            raise FormInvalidError({"members": ["Paste or upload at least one user key."]})
        with db().write() as session:
            add, remove = ([], keys) if removing else (keys, [])
            result = cohorts.change_members(session, change(), cohort_key, add, remove)
    except FormInvalidError as error:
        return _refused(cohort_key, Refusal(FormState("members", form, error.errors), 422))
    except DomainError as error:
        state = FormState("members", form, _field_error(error, "members"))
        return _refused(cohort_key, Refusal(state, error_status(error)))
    return done(_members_changed(result), "ui.cohort_page", cohort_key=cohort_key)


def _members_changed(result: cohorts.MembersChanged) -> str:
    if result.removed:
        return f"{result.removed} removed; the cohort now has {result.member_count} members."
    return f"{result.added} added; the cohort now has {result.member_count} members."


@bp.post("/cohorts/preview")
def cohort_preview() -> Any:
    """Would this user be in? The form's rules through the SDK's engine; writes nothing."""
    form, cohort_key = request.form, text(request.form, "cohort_key")
    try:
        result = _preview(form, cohort_key)
    except FormInvalidError as error:
        return _preview_answer(cohort_key, FormState("cohort", form, error.errors), None, 422)
    return _preview_answer(cohort_key, FormState("cohort", form), result, 200)


def _preview(form: Mapping[str, str], cohort_key: str) -> rules.Preview:
    """Check the rules as the API would, then evaluate the context against them."""
    definition = _checked(CohortPatchSchema(), form, only_rules=True)
    user_key = text(form, "preview_key")
    if not user_key:
        raise FormInvalidError({"preview_key": ["Enter a user key to check."]})
    try:
        context = rules.context_from(user_key, form.get("preview_attributes", ""))
    except ValueError as error:
        raise FormInvalidError({"preview_attributes": [str(error)]}) from error
    return rules.preview(definition["rules"], _preview_members(form, cohort_key), context)


def _preview_members(form: Mapping[str, str], cohort_key: str) -> list[str] | None:
    """Members the preview knows: pasted ones, plus saved ones unless there are too many."""
    pasted = lines(form.get("members", ""))
    if not cohort_key:
        return pasted
    with db().read() as session:
        cohort = cohorts.get_cohort(session, cohort_key)
        if cohorts.member_count(session, cohort.id) > PREVIEW_MEMBER_LIMIT:
            return None
        saved = cohorts.list_members(session, cohort_key, None, PREVIEW_MEMBER_LIMIT)
        return [member.user_key for member in saved] + pasted


def _preview_answer(
    cohort_key: str, form: FormState, result: rules.Preview | None, status: int
) -> Any:
    """The answer alone for htmx; without JavaScript, the whole editor page with it."""
    if is_htmx():
        return render("cohorts/preview.html", status, preview=result, form=form)
    if cohort_key:
        return _cohort_page(cohort_key, form, status, result)
    return _new_page(form, status, result)
