"""Rules: validating their JSON and compiling them into fast predicates.

The service validates API input with :func:`validate_rule`; :mod:`.wire` uses the same
checks when it loads a snapshot, so a rule the service accepted always compiles. A
compiled predicate looks the attribute up once and calls the op's ``test`` with values
parsed ahead of time; a missing (absent or ``null``) attribute never matches.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence

from .errors import RuleError
from .model import Context
from .model import Predicate
from .model import Rule
from .operators import OPERATORS

__all__ = [
    "MAX_ATTRIBUTE_LENGTH",
    "MAX_VALUES",
    "compile_rule",
    "compile_rules",
    "parse_rule",
    "validate_rule",
]

MAX_VALUES = 1000
"""Most values one rule may list (bigger sets belong in cohort members)."""
MAX_ATTRIBUTE_LENGTH = 100


def validate_rule(rule: object) -> list[str]:
    """Return every reason ``rule`` is invalid, each prefixed by its field; empty if valid.

    Checks that ``attribute`` is a non-empty string of at most ``MAX_ATTRIBUTE_LENGTH``
    characters, ``op`` is known, ``values`` is a list of 1..``MAX_VALUES`` items, and each
    value suits the op. Unknown extra fields are left to the caller's schema.
    """
    if not isinstance(rule, Mapping):
        return ["rule: must be an object"]
    return _attribute_problems(rule.get("attribute")) + _op_problems(
        rule.get("op"), rule.get("values")
    )


def _attribute_problems(attribute: object) -> list[str]:
    if isinstance(attribute, str) and 0 < len(attribute) <= MAX_ATTRIBUTE_LENGTH:
        return []
    return [f"attribute: must be a non-empty string of at most {MAX_ATTRIBUTE_LENGTH} characters"]


def _op_problems(op: object, values: object) -> list[str]:
    problems = []
    if not isinstance(op, str) or op not in OPERATORS:
        problems.append(f"op: must be one of {', '.join(OPERATORS)}")
    if not isinstance(values, list | tuple) or not 0 < len(values) <= MAX_VALUES:
        problems.append(f"values: must be a list of 1 to {MAX_VALUES} values")
    elif not problems:
        problems += OPERATORS[str(op)].check(values)
    return problems


def parse_rule(data: object) -> Rule:
    """Turn rule JSON into a :class:`Rule`.

    :raise RuleError: listing every problem :func:`validate_rule` finds.
    """
    problems = validate_rule(data)
    if problems or not isinstance(data, Mapping):
        raise RuleError(problems)
    return Rule(str(data["attribute"]), str(data["op"]), tuple(data["values"]))


def compile_rule(rule: Rule) -> Predicate:
    """Compile ``rule`` into a predicate over contexts, parsing its values once.

    :raise RuleError: if the rule is invalid (a :class:`Rule` built by hand may be).
    """
    problems = _attribute_problems(rule.attribute) + _op_problems(rule.op, rule.values)
    if problems:
        raise RuleError(problems)
    operator = OPERATORS[rule.op]
    return _predicate(rule.attribute, operator.test, operator.prepare(rule.values))


def _predicate(
    attribute: str, test: Callable[[object, object], bool], prepared: object
) -> Predicate:
    def predicate(context: Context) -> bool:
        value = context.get(attribute)
        return value is not None and test(value, prepared)

    return predicate


def compile_rules(rules: Sequence[Rule]) -> Predicate | None:
    """Compile rules that must ALL match; ``None`` for no rules, which match nobody.

    :raise RuleError: if any rule is invalid.
    """
    predicates = tuple(compile_rule(rule) for rule in rules)
    if len(predicates) <= 1:
        return predicates[0] if predicates else None

    def all_match(context: Context) -> bool:
        return all(predicate(context) for predicate in predicates)

    return all_match
