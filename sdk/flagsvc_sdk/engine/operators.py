"""Rule operators: a table from op name to pure functions.

Each :class:`Operator` is three pure functions: ``check(values)`` lists what is wrong with
a rule's values for this op (the service validates API input with it), ``prepare(values)``
parses them once at snapshot load (sets, semvers, instants, compiled regexes), and
``test(attribute_value, prepared)`` is the match, called per evaluation.

Semantics shared by every op, identical in every SDK because they follow JSON types:

- A rule matches if the attribute matches ANY of its ``values`` (``neq``/``not_in``: none).
- A missing attribute (absent or ``null``) never matches, not even ``neq``/``not_in``
  (LaunchDarkly does the same); :mod:`.rules` handles that, so ``test`` never sees ``None``.
- A type mismatch never matches and never raises. Booleans are not numbers, and numeric
  strings are NOT coerced: ``"5"`` is not ``gt 4``, so products must send numbers.
- Equality is JSON equality: ``1 == 1.0`` but ``true != 1``; lists and objects match nothing.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from types import MappingProxyType
from typing import Any
from typing import Generic
from typing import TypeAlias
from typing import TypeGuard
from typing import TypeVar

from .safe_regex import MAX_SUBJECT_LENGTH
from .safe_regex import validate_regex

__all__ = [
    "OPERATORS",
    "Operator",
    "is_number",
    "parse_instant",
    "parse_semver",
]

P = TypeVar("P")
SemverKey: TypeAlias = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


@dataclass(frozen=True, slots=True)
class Operator(Generic[P]):
    """The three pure functions that make up one op (see the module docstring)."""

    check: Callable[[Sequence[object]], list[str]]
    prepare: Callable[[Sequence[object]], P]
    test: Callable[[object, P], bool]


def is_number(value: object) -> TypeGuard[int | float]:
    """Tell whether ``value`` is a finite JSON number (booleans are not numbers)."""
    if type(value) is int:
        return True
    return type(value) is float and math.isfinite(value)


def _problems(values: Sequence[object], ok: Callable[[object], bool], want: str) -> list[str]:
    return [f"values[{i}]: must be {want}" for i, value in enumerate(values) if not ok(value)]


# --- equality: eq, in, neq, not_in ---------------------------------------------------

_BOOL_KEYS: dict[object, object] = {True: object(), False: object()}  # so true != 1 in a set


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | bool) or is_number(value)


def _check_scalars(values: Sequence[object]) -> list[str]:
    return _problems(values, _is_scalar, "a string, number or boolean")


def _prepare_set(values: Sequence[object]) -> frozenset[object]:
    return frozenset(_BOOL_KEYS[v] if isinstance(v, bool) else v for v in values)


def _test_in(value: object, prepared: frozenset[object]) -> bool:
    if value is True or value is False:
        value = _BOOL_KEYS[value]
    try:
        return value in prepared
    except TypeError:  # unhashable list/object attribute: a type mismatch
        return False


def _test_not_in(value: object, prepared: frozenset[object]) -> bool:
    return isinstance(value, str | int | float) and not _test_in(value, prepared)


# --- strings: contains, starts_with, ends_with --------------------------------------


def _check_strings(values: Sequence[object]) -> list[str]:
    return _problems(values, lambda v: isinstance(v, str), "a string")


def _prepare_strings(values: Sequence[object]) -> tuple[str, ...]:
    return tuple(v for v in values if isinstance(v, str))


def _test_contains(value: object, prepared: tuple[str, ...]) -> bool:
    return isinstance(value, str) and any(part in value for part in prepared)


def _test_starts_with(value: object, prepared: tuple[str, ...]) -> bool:
    return isinstance(value, str) and value.startswith(prepared)


def _test_ends_with(value: object, prepared: tuple[str, ...]) -> bool:
    return isinstance(value, str) and value.endswith(prepared)


# --- numbers: gt, gte, lt, lte ("any value" reduces to the loosest bound) -------------


def _check_numbers(values: Sequence[object]) -> list[str]:
    return _problems(values, is_number, "a number")


def _lowest_number(values: Sequence[object]) -> int | float:
    return min(v for v in values if is_number(v))


def _highest_number(values: Sequence[object]) -> int | float:
    return max(v for v in values if is_number(v))


def _test_gt(value: object, bound: float) -> bool:
    return is_number(value) and value > bound


def _test_gte(value: object, bound: float) -> bool:
    return is_number(value) and value >= bound


def _test_lt(value: object, bound: float) -> bool:
    return is_number(value) and value < bound


def _test_lte(value: object, bound: float) -> bool:
    return is_number(value) and value <= bound


# --- semantic versions: semver_gte, semver_lt ----------------------------------------

_IDENTIFIER_CHARS = frozenset(string.ascii_letters + string.digits + "-")
_MAX_VERSION_LENGTH = 256  # also keeps int() far below its digit limit


def _is_numeric_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and (text == "0" or text[0] != "0")


def _ids_ok(text: str, *, prerelease: bool) -> bool:
    for part in text.split("."):
        if not part or not _IDENTIFIER_CHARS.issuperset(part):
            return False
        if prerelease and part.isdigit() and not _is_numeric_id(part):
            return False  # numeric prerelease identifiers have no leading zeros
    return True


def _semver_parts(text: str) -> tuple[list[str], str | None] | None:
    """Split a version into its three numbers and its prerelease (``None`` when absent)."""
    version, plus, build = text.removeprefix("v").partition("+")
    core, dash, prerelease = version.partition("-")
    numbers = core.split(".")
    if len(numbers) != 3 or not all(_is_numeric_id(number) for number in numbers):
        return None
    if plus and not _ids_ok(build, prerelease=False):
        return None
    if dash and not _ids_ok(prerelease, prerelease=True):
        return None
    return numbers, (prerelease if dash else None)


def parse_semver(text: object) -> SemverKey | None:
    """Parse ``[v]MAJOR.MINOR.PATCH[-prerelease][+build]`` into a precedence key.

    Keys compare like semver.org section 11: a prerelease sorts before its release,
    numeric identifiers numerically and below alphanumeric ones; build metadata is ignored.
    :return: the key, or ``None`` when ``text`` is not a version.
    """
    if not isinstance(text, str) or len(text) > _MAX_VERSION_LENGTH:
        return None
    if (parts := _semver_parts(text)) is None:
        return None
    (major, minor, patch), prerelease = [int(number) for number in parts[0]], parts[1]
    if prerelease is None:
        return (major, minor, patch, 1, ())
    ids = tuple((0, int(i), "") if i.isdigit() else (1, 0, i) for i in prerelease.split("."))
    return (major, minor, patch, 0, ids)


def _check_semvers(values: Sequence[object]) -> list[str]:
    return _problems(values, lambda v: parse_semver(v) is not None, "a semantic version")


def _lowest_semver(values: Sequence[object]) -> SemverKey:
    return min(key for key in map(parse_semver, values) if key is not None)


def _highest_semver(values: Sequence[object]) -> SemverKey:
    return max(key for key in map(parse_semver, values) if key is not None)


def _test_semver_gte(value: object, bound: SemverKey) -> bool:
    key = parse_semver(value)
    return key is not None and key >= bound


def _test_semver_lt(value: object, bound: SemverKey) -> bool:
    key = parse_semver(value)
    return key is not None and key < bound


# --- instants: before, after ----------------------------------------------------------


def parse_instant(value: object) -> float | None:
    """Return epoch seconds for an ISO-8601 string (naive means UTC; ``Z`` allowed) or an
    epoch number in seconds; ``None`` for anything else."""
    if is_number(value):
        return value
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    except (ValueError, OverflowError):
        return None


def _check_instants(values: Sequence[object]) -> list[str]:
    want = "an ISO-8601 datetime or epoch seconds"
    return _problems(values, lambda v: parse_instant(v) is not None, want)


def _latest_instant(values: Sequence[object]) -> float:
    return max(t for t in map(parse_instant, values) if t is not None)


def _earliest_instant(values: Sequence[object]) -> float:
    return min(t for t in map(parse_instant, values) if t is not None)


def _test_before(value: object, bound: float) -> bool:
    moment = parse_instant(value)
    return moment is not None and moment < bound


def _test_after(value: object, bound: float) -> bool:
    moment = parse_instant(value)
    return moment is not None and moment > bound


# --- regular expressions: matches (the safety rules live in .safe_regex) ------------


def _check_patterns(values: Sequence[object]) -> list[str]:
    return [f"values[{i}]: {why}" for i, v in enumerate(values) for why in validate_regex(v)]


def _prepare_patterns(values: Sequence[object]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(v) for v in values if isinstance(v, str))


def _test_matches(value: object, prepared: tuple[re.Pattern[str], ...]) -> bool:
    if not isinstance(value, str) or len(value) > MAX_SUBJECT_LENGTH:
        return False
    return any(pattern.search(value) is not None for pattern in prepared)


OPERATORS: Mapping[str, Operator[Any]] = MappingProxyType(
    {
        "eq": Operator(_check_scalars, _prepare_set, _test_in),
        "neq": Operator(_check_scalars, _prepare_set, _test_not_in),
        "in": Operator(_check_scalars, _prepare_set, _test_in),
        "not_in": Operator(_check_scalars, _prepare_set, _test_not_in),
        "contains": Operator(_check_strings, _prepare_strings, _test_contains),
        "starts_with": Operator(_check_strings, _prepare_strings, _test_starts_with),
        "ends_with": Operator(_check_strings, _prepare_strings, _test_ends_with),
        "gt": Operator(_check_numbers, _lowest_number, _test_gt),
        "gte": Operator(_check_numbers, _lowest_number, _test_gte),
        "lt": Operator(_check_numbers, _highest_number, _test_lt),
        "lte": Operator(_check_numbers, _highest_number, _test_lte),
        "semver_gte": Operator(_check_semvers, _lowest_semver, _test_semver_gte),
        "semver_lt": Operator(_check_semvers, _highest_semver, _test_semver_lt),
        "before": Operator(_check_instants, _latest_instant, _test_before),
        "after": Operator(_check_instants, _earliest_instant, _test_after),
        "matches": Operator(_check_patterns, _prepare_patterns, _test_matches),
    }
)
"""Every op by name; a rule's ``op`` must be one of these keys."""
