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
    count = bounded(form.get("rule_rows"), 2**31) or 0
    rules = []
    for index in range(min(count, MAX_RULE_ROWS)):
        attribute, op = text(form, f"rules-{index}-attribute"), text(form, f"rules-{index}-op")
        values = lines(form.get(f"rules-{index}-values", ""))
        if attribute or values:
            rules.append({"attribute": attribute, "op": op, "values": typed(op, values)})
    return rules


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
