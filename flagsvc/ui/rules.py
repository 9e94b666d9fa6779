"""Cohort rules as form rows, and the live preview: "would this user be in?".

A rule row is an attribute, an op and values one per line. Values are typed as the
engine needs them: numbers for ``gt``/``lt`` and friends; for equality ops a number,
``true``/``false`` or a quoted string is read as that JSON value (``"42"`` is text,
``42`` a number), anything else is text; the other ops take text as typed.

The preview evaluates with the SDK's own engine against a one-cohort snapshot built
from the form, so it answers exactly as product code would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flagsvc_sdk.engine import OPERATORS
from flagsvc_sdk.engine import RuleError
from flagsvc_sdk.engine import compile_rule
from flagsvc_sdk.engine import evaluate
from flagsvc_sdk.engine import load_snapshot
from flagsvc_sdk.engine import parse_rule

from flagsvc.ui.forms import bounded
from flagsvc.ui.forms import lines
from flagsvc.ui.forms import number
from flagsvc.ui.forms import text

NUMERIC_OPS = frozenset({"gt", "gte", "lt", "lte"})
EQUALITY_OPS = frozenset({"eq", "neq", "in", "not_in"})
OP_LABELS = {
    "eq": "equals",
    "neq": "does not equal",
    "in": "is one of",
    "not_in": "is none of",
    "contains": "contains",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "gt": "is greater than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "semver_gte": "version is at least",
    "semver_lt": "version is below",
    "before": "is before (date)",
    "after": "is after (date)",
    "matches": "matches pattern",
}
OP_OPTIONS = [(op, OP_LABELS.get(op, op)) for op in OPERATORS]
BLANK_RULE_ROWS = 2
MAX_RULE_ROWS = 60  # rows read from one form (the API allows 50 rules)
PREVIEW_FLAG = "preview"


def rule_rows(form: Mapping[str, str]) -> list[dict[str, Any]]:
    """The rule rows a form sent, typed for the API's schema; empty rows skipped."""
    return sent_rules(form)[0]


def sent_rules(form: Mapping[str, str]) -> tuple[list[dict[str, Any]], list[int]]:
    """The rules a form sent (empty rows skipped), and the form row each came from."""
    count = bounded(form.get("rule_rows"), 2**31) or 0
    rules, rows = [], []
    for index in range(min(count, MAX_RULE_ROWS)):
        attribute, op = text(form, f"rules-{index}-attribute"), text(form, f"rules-{index}-op")
        values = lines(form.get(f"rules-{index}-values", ""))
        if attribute or values:
            rules.append({"attribute": attribute, "op": op, "values": typed(op, values)})
            rows.append(index)
    return rules, rows


RULE_ERROR = re.compile(r"rules-(\d+)(-(?:attribute|op|values|_page))?(?:-(\d+))?$")
VALUE_REASON = re.compile(r"^[Vv]alues\[(\d+)\]: (.*)$")
PLAIN_VALUE_REASONS: tuple[tuple[str, str], ...] = (  # the engine's words → people's
    (r"must be a number", "{value} is not a number."),
    (r"must be a semantic version", "{value} is not a version like 1.4.0."),
    (r"must be a string", "{value} must be text."),
    (r"must be a string, number or boolean", "{value} must be text, a number, true or false."),
    (
        r"must be an ISO-8601 datetime or epoch seconds",
        "{value} is not a date and time; write one like 2026-12-02T19:32:00Z.",
    ),
    (r"must be at most (\d+) characters", "{value} is longer than {detail} characters."),
    (r"invalid regular expression: (.*)", "{value} is not a valid pattern ({detail})."),
    (r"unsafe regular expression: (.*)", "{value} could take too long to match: {detail}."),
)


def placed_errors(
    errors: Mapping[str, list[str]], rules: Sequence[Mapping[str, Any]], rows: Sequence[int]
) -> dict[str, list[str]]:
    """The schema's errors on the rules, moved to the rows they were typed in, in words.

    The schema numbers the rules it got, blank rows left out; the form numbers its
    rows. ``rows[k]`` is the form row of the k-th rule. A value's reason names the
    line and what was typed there ("Line 2, “1.x”, is not a version like 1.4.0.").
    """
    placed: dict[str, list[str]] = {}
    for key, reasons in errors.items():
        found = RULE_ERROR.match(key)
        if found is None or int(found[1]) >= len(rows):
            placed.setdefault(key, []).extend(reasons)
            continue
        index, field, value_index = int(found[1]), found[2] or "", found[3]
        rule_values = list(rules[index].get("values") or [])
        said = [_plain_rule_reason(r, rule_values, field, value_index) for r in reasons]
        placed.setdefault(f"rules-{rows[index]}{field}", []).extend(said)
    return placed


def _plain_rule_reason(
    reason: str, values: Sequence[Any], field: str, value_index: str | None
) -> str:
    found = VALUE_REASON.match(reason)
    if found is not None:
        value_index, reason = found[1], found[2]
    count = re.fullmatch(
        r"(?i)values: must be a list of 1 to (\d+) values|Enter 1 to (\d+) characters\.", reason
    )
    if value_index is None and field == "-values" and count is not None:
        return f"Enter 1 to {count[1] or count[2]} values, one per line."
    if value_index is None:
        bare = re.sub(r"(?i)^(attribute|op|values): ", "", reason)
        return bare[:1].upper() + bare[1:]
    position = int(value_index)
    shown = values[position] if position < len(values) else ""
    value = f"Line {position + 1} (“{shown}”)"
    for pattern, words in PLAIN_VALUE_REASONS:
        found = re.fullmatch(pattern, reason)
        if found is not None:
            detail = found[1] if found.groups() else ""
            return words.format(value=value, detail=detail.rstrip("."))
    return f"{value}: {reason[:1].lower()}{reason[1:]}"


def typed(op: str, values: Sequence[str]) -> list[Any]:
    """Form text → the JSON values ``op`` compares with (see the module docstring)."""
    if op in NUMERIC_OPS:
        return [number(value) for value in values]
    if op in EQUALITY_OPS:
        return [_literal(value) for value in values]
    return list(values)


def _literal(value: str) -> Any:
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, bool | int | float | str) else value


def shown(op: str, values: Sequence[Any]) -> str:
    """Rule values as the form shows them, so saving unchanged keeps their types."""
    return "\n".join(_shown_value(op, value) for value in values)


def _shown_value(op: str, value: Any) -> str:
    if not isinstance(value, str):
        return json.dumps(value)
    if op in EQUALITY_OPS and _literal(value) != value:
        return json.dumps(value)  # text that reads as a number or boolean: keep it text
    return value


def rows_for(rules: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Saved rules as editor rows, plus blank rows for new ones."""
    rows = [
        {"attribute": r["attribute"], "op": r["op"], "values": shown(r["op"], r["values"])}
        for r in rules
    ]
    return rows + [{"attribute": "", "op": "eq", "values": ""}] * BLANK_RULE_ROWS


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """How one rule judged the context: its words and whether it matched."""

    words: str
    matched: bool


@dataclass(frozen=True, slots=True)
class Preview:
    """The engine's answer for one context, with the reason in words."""

    user_key: str
    included: bool
    member: bool | None  # None: the saved member list was too big to check here
    checks: list[RuleCheck]
    reason: str


def context_from(user_key: str, attributes: str) -> dict[str, Any]:
    """A context from the preview fields: a JSON object, or ``name = value`` lines."""
    context: dict[str, Any] = {}
    if attributes.strip().startswith("{"):
        parsed = json.loads(attributes)
        if not isinstance(parsed, dict):
            raise ValueError("attributes must be a JSON object")
        context.update(parsed)
    else:
        for line in lines(attributes):
            name, sep, value = line.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"write each attribute as name = value (got {line!r})")
            context[name.strip()] = _literal(value.strip())
    return context | {"key": user_key}


def preview(
    rules: Sequence[Mapping[str, Any]], members: Sequence[str] | None, context: dict[str, Any]
) -> Preview:
    """Evaluate ``context`` against a one-cohort snapshot of ``rules`` and ``members``."""
    user_key = str(context["key"])
    doc = _snapshot_doc(rules, members or [])
    result = evaluate(load_snapshot(doc), PREVIEW_FLAG, context)
    checks = [_check(rule, context) for rule in rules]
    member = None if members is None else user_key in set(members)
    included = result.enabled and result.matched_cohort is not None
    return Preview(user_key, included, member, checks, _reason(included, member, checks))


def _snapshot_doc(rules: Sequence[Mapping[str, Any]], members: Sequence[str]) -> dict[str, Any]:
    """One flag in early access for one cohort: on exactly for the cohort's users."""
    cohort = {"key": "c", "members": list(members), "rules": list(rules), "opt_in": False}
    flag = {
        "key": PREVIEW_FLAG,
        "salt": PREVIEW_FLAG,
        "stage": "early_access",
        "rollout_percent": 0,
        "killed": False,
        "cohorts": ["c"],
        "exclusions": [],
    }
    doc = {"spec_version": 1, "environment": "preview", "version": 0}
    return doc | {"flags": {PREVIEW_FLAG: flag}, "cohorts": {"c": cohort}}


def _check(rule: Mapping[str, Any], context: Mapping[str, Any]) -> RuleCheck:
    values = ", ".join(json.dumps(v) if not isinstance(v, str) else v for v in rule["values"])
    words = f"{rule['attribute']} {OP_LABELS.get(rule['op'], rule['op'])} {values}"
    try:
        matched = compile_rule(parse_rule(rule))(context)
    except RuleError:
        matched = False
    return RuleCheck(words, matched)


def _reason(included: bool, member: bool | None, checks: Sequence[RuleCheck]) -> str:
    if member:
        return "They are an explicit member."
    if included:
        return "They match every rule."
    if not checks:
        return "The cohort has no rules, and they are not a member."
    failed = sum(1 for check in checks if not check.matched)
    return f"{failed} of {len(checks)} rules do not match, and they are not a member."
