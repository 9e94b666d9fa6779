"""Flag values in the UI: the variation editor, each cohort's variation, and who gets what.

A browser sends text; a typed flag's values are JSON of the flag's type. The editor is
a fixed set of rows (key, value, description) with two radio groups saying which row
is served on and which off, so it works without JavaScript. Each value's text is read
as the chosen type says (``10`` is an integer for an integer flag and a string for a
string flag), then the API's schemas and the domain's rules judge it, so the UI refuses
exactly what ``PUT /api/v1/flags/<key>/variations`` refuses, next to the row at fault.

The audience view answers "who gets which value here" from a flag state with the
engine's decision order (kill switch, exclusions, stage, cohorts in order, ramp), in
words, so nobody has to read the snapshot to know what a cohort is served.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import request

from flagsvc.domain.errors import DomainError
from flagsvc.domain.errors import ReadinessRequiredError
from flagsvc.domain.errors import StaleVersionError
from flagsvc.domain.roles import Permission
from flagsvc.domain.variations import MAX_VARIATIONS
from flagsvc.domain.variations import ValueType
from flagsvc.domain.variations import VariationSet
from flagsvc.services import flags
from flagsvc.services import variations
from flagsvc.services.flag_states import FlagStateDetail
from flagsvc.ui import bp
from flagsvc.ui.auth import change
from flagsvc.ui.auth import permission_required
from flagsvc.ui.forms import PAGE
from flagsvc.ui.forms import FormInvalidError
from flagsvc.ui.forms import FormState
from flagsvc.ui.forms import bounded
from flagsvc.ui.forms import json_value
from flagsvc.ui.forms import number
from flagsvc.ui.forms import plain
from flagsvc.ui.forms import validate
from flagsvc.ui.forms import version_guard
from flagsvc.ui.history import changed_since
from flagsvc.ui.pages import done
from flagsvc.ui.pages import error_status
from flagsvc.ui.pages import refuse
from flagsvc.ui.refusals import Refusal
from flagsvc.web.context import db
from flagsvc.web.shapes.flags import VariationsSchema
from flagsvc.web.shapes.flags import variation_set

FORM = "values"
NEW_ROWS = 3  # blank rows of a new flag's editor
EXTRA_ROWS = 2  # blank rows after a flag's variations on its page
NO_OFF = ""  # the off radio that serves the caller's default
TYPE_OPTIONS = [
    (ValueType.BOOLEAN.value, "Boolean (on / off)"),
    (ValueType.STRING.value, "String"),
    (ValueType.INTEGER.value, "Integer"),
    (ValueType.FLOAT.value, "Number (float)"),
    (ValueType.OBJECT.value, "JSON object or array"),
]
VALUE_HELP = {
    ValueType.STRING: "Text, exactly as typed.",
    ValueType.INTEGER: "A whole number, like 50.",
    ValueType.FLOAT: "A number, like 0.25.",
    ValueType.OBJECT: 'JSON, like {"layout": "v2"} or [1, 2].',
}
SHOWN_CHARS = 80  # a value's text in tables; the editor holds all of it
_ROW_FIELD = re.compile(r"^variations(?:\[(\d+)\]\.|-(\d+)-)(key|value|description)$")


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the editor as shown: its index and the text of its three fields."""

    index: int
    key: str
    value: str
    description: str


@dataclass(frozen=True, slots=True)
class Audience:
    """Who, in one environment, gets which variation and why (the SDK's reason)."""

    who: str
    variation: str | None
    value: str
    reason: str


# --- reading the editor -------------------------------------------------------------------


def value_text(value_type: ValueType, value: Any) -> str:
    """A stored value as the editor shows it (a string as is, the rest as JSON)."""
    if value_type is ValueType.STRING and isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def shown(value: Any) -> str:
    """A value as a table cell shows it: JSON, cut at ``SHOWN_CHARS``."""
    said = json.dumps(value, ensure_ascii=False)
    return said if len(said) <= SHOWN_CHARS else said[: SHOWN_CHARS - 1] + "…"


def editor_rows(form: FormState, stored: VariationSet | None, form_name: str = FORM) -> list[Row]:
    """The rows to show: what was sent (a refused form), else the stored variations and
    a few blank ones."""
    if form.name == form_name:
        count = _sent_rows(form.values)
        return [
            Row(n, *(str(form.values.get(f"variations-{n}-{part}", "")) for part in _PARTS))
            for n in range(count)
        ]
    rows = []
    if stored is not None and stored.value_type is not ValueType.BOOLEAN:
        for n, variation in enumerate(stored.variations):
            text = value_text(stored.value_type, variation["value"])
            rows.append(Row(n, variation["key"], text, variation.get("description", "")))
    blank = EXTRA_ROWS if rows else NEW_ROWS
    target = min(len(rows) + blank, MAX_VARIATIONS)
    while len(rows) < target:
        rows.append(Row(len(rows), "", "", ""))
    return rows


_PARTS = ("key", "value", "description")


def _sent_rows(values: Mapping[str, Any]) -> int:
    indexes = [int(m.group(2)) for name in values if (m := _ROW_FIELD.match(name)) and m.group(2)]
    return min(max(indexes, default=-1) + 1, MAX_VARIATIONS)


def read_editor(
    form: Mapping[str, str], value_type: ValueType, problems: dict[str, list[str]]
) -> tuple[dict[str, Any], list[int]]:
    """The editor's rows as the API's fields, and the row index of each variation.

    Blank rows are left out. ``problems`` gets what the text alone shows (bad JSON, an
    on or off choice on a blank row), under the row's field names.
    """
    sent: list[dict[str, Any]] = []
    rows: list[int] = []
    for n in range(_sent_rows(form)):
        key, raw, description = (form.get(f"variations-{n}-{part}", "") for part in _PARTS)
        if not (key.strip() or raw.strip() or description.strip()):
            continue
        value = _typed_text(value_type, raw, f"variations-{n}-value", problems)
        sent.append({"key": key.strip(), "value": value, "description": description.strip()})
        rows.append(n)
    fields: dict[str, Any] = {"variations": sent}
    for pointer in ("on_variation", "off_variation"):
        chosen = form.get(pointer, NO_OFF)
        if chosen == NO_OFF:
            fields[pointer] = None
        elif bounded(chosen, 2**31) in rows:
            fields[pointer] = sent[rows.index(int(chosen))]["key"]
        else:
            problems[pointer] = ["Choose a row that has a key."]
    return fields, rows


def _typed_text(value_type: ValueType, raw: str, name: str, problems: dict[str, list[str]]) -> Any:
    """The value's text as the type reads it; text that is not one stays text, for the
    domain's rule to refuse in its words (``must be an integer``)."""
    if value_type is ValueType.STRING:
        return raw
    text = raw.strip()
    if value_type is ValueType.INTEGER:
        return int(text) if re.fullmatch(r"[+-]?[0-9]{1,20}", text) else text
    if value_type is ValueType.FLOAT:
        return number(text)
    if value_type is ValueType.OBJECT:
        if not text:
            problems[name] = ["Enter JSON: an object like {} or an array like []."]
        return json_value(text, name, problems)
    return text


def on_row_errors(errors: Mapping[str, list[str]], rows: Sequence[int]) -> dict[str, list[str]]:
    """Errors about the n-th variation (``variations[1].value``, ``variations-1-key``)
    moved onto the editor row that holds it."""
    moved: dict[str, list[str]] = {}
    for name, reasons in errors.items():
        found = _ROW_FIELD.match(name)
        if found:
            index = int(found.group(1) or found.group(2))
            row = rows[index] if index < len(rows) else index
            name = f"variations-{row}-{found.group(3)}"
        moved.setdefault(name, []).extend(reasons)
    return moved


def type_fields(form: Mapping[str, str], problems: dict[str, list[str]]) -> dict[str, Any]:
    """A new flag's value type and, for a typed one, its variations as the API takes them."""
    raw_type = form.get("value_type", ValueType.BOOLEAN.value).strip() or ValueType.BOOLEAN.value
    try:
        value_type = ValueType(raw_type)
    except ValueError:
        return {"value_type": raw_type}  # the schema names the choices
    if value_type is ValueType.BOOLEAN:
        fields, _ = read_editor(form, ValueType.STRING, {})
        if fields["variations"]:
            problems["variations"] = [
                "A boolean flag has the fixed values on (true) and off (false): empty these "
                "rows, or choose another type."
            ]
        return {"value_type": raw_type}
    fields, _ = read_editor(form, value_type, problems)
    if not fields["variations"]:
        problems["variations"] = [f"A {value_type.value} flag needs at least one variation."]
    if "on_variation" in fields and fields["on_variation"] is None:
        problems.setdefault("on_variation", ["Choose the row served on."])
        fields.pop("on_variation")
    return {"value_type": raw_type, **fields}


def new_flag_rows(form: Mapping[str, str]) -> list[int]:
    """The editor row of each variation a new flag's form sent (to place its errors)."""
    try:
        value_type = ValueType(form.get("value_type", ""))
    except ValueError:
        value_type = ValueType.STRING
    return read_editor(form, value_type, {})[1]


# --- saving the editor on the flag page ---------------------------------------------------


@bp.post("/flags/<flag_key>/variations")
@permission_required(Permission.EDIT_FLAGS)
def set_values(flag_key: str) -> Any:
    """Replace a typed flag's variations and its on and off (the page's version guards)."""
    form = request.form
    with db().read() as session:
        value_type = ValueType(flags.get_flag(session, flag_key).value_type)
    problems: dict[str, list[str]] = {}
    fields, rows = read_editor(form, value_type, problems)
    if fields.get("on_variation", NO_OFF) is None:
        problems.setdefault("on_variation", ["Choose the row served on."])
    guard = version_guard("flag", form.get("version"))
    try:
        data = validate(VariationsSchema(), fields, problems)
        with db().write() as session:
            variations.set_variations(
                session, change(), flag_key, variation_set(value_type, data), precondition=guard
            )
    except FormInvalidError as error:
        return _refused(flag_key, on_row_errors(error.errors, rows), 422)
    except StaleVersionError:
        said = changed_since(form.get("seen"), flag_key=flag_key, environment="")
        return _refused(flag_key, {PAGE: [said]}, 412)
    except ReadinessRequiredError as error:
        return _refused(flag_key, {PAGE: [_held(flag_key, error)]}, error_status(error))
    except DomainError as error:
        return _refused(flag_key, _at_field(error, rows), error_status(error))
    return done("Values saved.", "ui.flag_page", flag_key=flag_key, _anchor="values")


def _at_field(error: DomainError, rows: Sequence[int]) -> dict[str, list[str]]:
    """A domain refusal at the row field it names, else at the top of the form."""
    field, reason = getattr(error, "field", None), getattr(error, "reason", None)
    if isinstance(field, str) and isinstance(reason, str):
        return on_row_errors({field: [plain(reason)]}, rows)
    return {PAGE: [error.message]}


def _held(flag_key: str, error: ReadinessRequiredError) -> str:
    with db().read() as session:
        items = {i.item_key: i.label for i in flags.get_flag(session, flag_key).readiness_items}
    missing = ", ".join(items.get(key, key) for key in error.missing)
    return (
        "The off value is what everyone outside early access gets, so changing it is a "
        f"general rollout of that value: it waits for launch readiness ({missing})."
    )


def _refused(flag_key: str, errors: dict[str, list[str]], status: int) -> Any:
    from flagsvc.ui.flags import render_flag_page  # the flag page imports this module

    def in_place(refusal: Refusal) -> Any:
        return render_flag_page(flag_key, refusal.form, refusal.status)

    refusal = Refusal(FormState(FORM, request.form, errors), status)
    return refuse(refusal, "ui.flag_page", in_place, flag_key=flag_key, _anchor="values")


# --- each cohort's variation, and who gets which value -------------------------------------


def cohort_choices(form: Mapping[str, str], chosen: Sequence[str]) -> dict[str, str]:
    """The variations the cohort form gives its chosen cohorts (``variation-<cohort>``);
    the blank choice serves the on variation."""
    own = {cohort: form.get(f"variation-{cohort}", "").strip() for cohort in chosen}
    return {cohort: variation for cohort, variation in own.items() if variation}


def audiences(state: FlagStateDetail, values: VariationSet) -> list[Audience]:
    """Who gets which value in one environment, in the engine's decision order."""
    stage, killed = state.state.stage, state.state.killed
    off_key, off_value = values.off_value
    off_text = "the code's default" if off_key is None else shown(off_value)

    def on(who: str, reason: str, key: str | None = None) -> Audience:
        chosen = key or values.on
        return Audience(who, chosen, shown(values.values.get(chosen)), reason)

    def off(who: str, reason: str) -> Audience:
        return Audience(who, off_key, off_text, reason)

    if stage == "retired":
        return [Audience("Everyone: retired flags are not sent to SDKs", None,
                         "the code's default", "ERROR (FLAG_NOT_FOUND)")]  # fmt: skip
    if killed:
        return [off("Everyone: the kill switch is on", "DISABLED")]
    found = []
    if state.exclusions:
        count = len(state.exclusions)
        found.append(off(f"{count} excluded user{'s' * (count != 1)}", "TARGETING_MATCH"))
    rest = "Everyone else" if found else "Everyone"
    if stage == "off":
        return [*found, off(rest, "DISABLED")]
    if stage == "released":
        return [*found, on(rest, "STATIC")]
    for cohort in state.cohorts:
        own = state.cohort_variations.get(cohort)
        found.append(on(f"Cohort {cohort}", "TARGETING_MATCH", own))
    rest = "Everyone else" if found else "Everyone"
    percent = state.rollout_percent if stage == "general" else 0
    if percent >= 100:
        return [*found, on(rest, "SPLIT")]
    if percent <= 0:
        return [*found, off(rest, "DEFAULT")]
    return [
        *found,
        on(f"{percent:g} % of {rest.lower()}, by user key", "SPLIT"),
        off(f"The other {100 - percent:g} %", "SPLIT"),
        Audience(
            "Contexts without a user key (outside the cohorts)",
            None,
            "the code's default",
            "ERROR (TARGETING_KEY_MISSING)",
        ),
    ]
