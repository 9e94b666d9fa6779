"""Operators: every op, missing attributes, type mismatches, parsers and the regex guard."""

from __future__ import annotations

import time
from datetime import UTC
from datetime import datetime
from itertools import pairwise

import pytest
from flagsvc_sdk.engine import OPERATORS
from flagsvc_sdk.engine import Rule
from flagsvc_sdk.engine import compile_rule
from flagsvc_sdk.engine import validate_regex
from flagsvc_sdk.engine.operators import parse_instant
from flagsvc_sdk.engine.operators import parse_semver
from hypothesis import given
from hypothesis import strategies as st

# One valid value list per op, for the tests that apply to every op.
SAMPLE_VALUES: dict[str, tuple[object, ...]] = {
    "eq": ("x",),
    "neq": ("x",),
    "in": ("x", 1),
    "not_in": ("x", 1),
    "contains": ("x",),
    "starts_with": ("x",),
    "ends_with": ("x",),
    "gt": (1,),
    "gte": (1,),
    "lt": (1,),
    "lte": (1,),
    "semver_gte": ("1.0.0",),
    "semver_lt": ("1.0.0",),
    "before": ("2024-01-01T00:00:00Z",),
    "after": ("2024-01-01T00:00:00Z",),
    "matches": ("x",),
}

# Rule values must be finite; an attribute may be any JSON scalar (NaN aside).
value_scalars = st.one_of(
    st.text(max_size=5),
    st.integers(-5, 5),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
scalars = st.one_of(value_scalars, st.just(float("inf")))
finite_numbers = st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False))


def _matches(op: str, values: tuple[object, ...] | list[object], value: object) -> bool:
    return compile_rule(Rule("attr", op, tuple(values)))({"key": "user-1", "attr": value})


def test_operators__table__has_every_documented_op() -> None:
    assert set(OPERATORS) == set(SAMPLE_VALUES)


@pytest.mark.parametrize("op", sorted(SAMPLE_VALUES))
def test_operator__missing_attribute__never_matches(op: str) -> None:
    # Given a valid rule of each op, including neq and not_in
    predicate = compile_rule(Rule("attr", op, SAMPLE_VALUES[op]))
    # Then neither an absent nor a null attribute matches
    assert predicate({"key": "user-1"}) is False
    assert predicate({"key": "user-1", "attr": None}) is False


@pytest.mark.parametrize("op", sorted(SAMPLE_VALUES))
@pytest.mark.parametrize("value", [[], ["x"], {}, {"x": 1}, [[1]]], ids=repr)
def test_operator__list_or_object_attribute__never_matches_nor_raises(
    op: str, value: object
) -> None:
    assert _matches(op, SAMPLE_VALUES[op], value) is False


@pytest.mark.parametrize(
    ("op", "values", "value", "expected"),
    [
        ("eq", ["NL"], "NL", True),
        ("eq", ["NL"], "nl", False),
        ("eq", ["gold", "platinum"], "platinum", True),
        ("eq", [1], 1.0, True),
        ("eq", [1], True, False),
        ("eq", [True], True, True),
        ("eq", [False], 0, False),
        ("eq", ["5"], 5, False),
        ("neq", ["free"], "gold", True),
        ("neq", ["free"], "free", False),
        ("neq", [1], True, True),
        ("in", ["NL", "DE"], "DE", True),
        ("in", ["NL", "DE"], "FR", False),
        ("not_in", ["NL", "DE"], "FR", True),
        ("not_in", ["NL", "DE"], "NL", False),
        ("not_in", ["NL"], 31, True),
        ("contains", ["@corp."], "a@corp.example", True),
        ("contains", ["@corp."], "a@example.com", False),
        ("contains", ["12"], 1234, False),
        ("starts_with", ["admin", "root"], "root@x", True),
        ("starts_with", ["admin"], "x-admin", False),
        ("starts_with", ["1"], 12, False),
        ("ends_with", ["@example.com"], "a@example.com", True),
        ("ends_with", ["@example.com"], "a@EXAMPLE.com", False),
        ("ends_with", ["1"], True, False),
    ],
)
def test_operator__equality_and_strings__expected(
    op: str, values: list[object], value: object, expected: bool
) -> None:
    assert _matches(op, values, value) is expected


@pytest.mark.parametrize(
    ("op", "values", "value", "expected"),
    [
        ("gt", [17], 18, True),
        ("gt", [18], 18, False),
        ("gt", [30, 10], 20, True),
        ("gt", [17], "18", False),
        ("gt", [0], True, False),
        ("gt", [1.5], 10**400, True),
        ("gte", [18], 18, True),
        ("gte", [0.5], 0.49, False),
        ("gte", [0], False, False),
        ("lt", [18], 17.5, True),
        ("lt", [10, 30], 20, True),
        ("lt", [18], "1", False),
        ("lte", [18], 18, True),
        ("lte", [18], 19, False),
        ("lte", [18], float("nan"), False),
    ],
)
def test_operator__numbers__expected(
    op: str, values: list[object], value: object, expected: bool
) -> None:
    assert _matches(op, values, value) is expected


@pytest.mark.parametrize(
    ("op", "values", "value", "expected"),
    [
        ("semver_gte", ["1.2.0"], "1.2.3", True),
        ("semver_gte", ["1.9.0"], "1.10.0", True),
        ("semver_gte", ["1.9.9"], "v2.0.0", True),
        ("semver_gte", ["1.0.0"], "1.0.0-rc.1", False),
        ("semver_gte", ["1.0.0-beta.2"], "1.0.0-beta.11", True),
        ("semver_gte", ["1.0.0"], "1.0.0+build.7", True),
        ("semver_gte", ["2.0.0", "1.0.0"], "1.5.0", True),
        ("semver_gte", ["1.0.0"], "1.2", False),
        ("semver_gte", ["1.0.0"], "1.2.3.4", False),
        ("semver_gte", ["1.0.0"], "01.2.3", False),
        ("semver_gte", ["1.0.0"], "1.0.0-", False),
        ("semver_gte", ["1.0.0"], "1.0.0-01", False),
        ("semver_gte", ["1.0.0"], "1.0.0+", False),
        ("semver_gte", ["1.0.0"], "１.0.0", False),
        ("semver_gte", ["1.0.0"], 2, False),
        ("semver_lt", ["1.0.0"], "1.0.0-alpha", True),
        ("semver_lt", ["2.0.0"], "2.0.0", False),
        ("semver_lt", ["1.9.0"], "1.10.0", False),
    ],
)
def test_operator__semver__expected(
    op: str, values: list[object], value: object, expected: bool
) -> None:
    assert _matches(op, values, value) is expected


@pytest.mark.parametrize(
    ("op", "values", "value", "expected"),
    [
        ("before", ["2024-01-01T00:00:00Z"], "2023-12-31T23:59:59Z", True),
        ("before", ["2024-01-01T00:00:00Z"], "2024-01-01T01:30:00+02:00", True),
        ("before", ["2024-01-01T00:00:00Z"], "2024-01-01T00:00:00", False),
        ("before", ["2024-01-01T00:00:00Z"], 1_704_067_199, True),
        ("before", ["2024-01-01"], "2023-06-30", True),
        ("before", ["2024-01-01"], "last tuesday", False),
        ("before", ["2024-01-01"], True, False),
        ("before", ["2020-01-01", "2025-01-01"], "2024-01-01", True),
        ("after", [1_704_067_200], "2024-01-01T00:00:01Z", True),
        ("after", ["2024-01-01T00:00:00Z"], 1_704_067_200, False),
        ("after", ["2024-01-01T00:00:00Z"], 1_704_067_200.5, True),
        ("after", ["2024-01-01"], "2024-13-01", False),
    ],
)
def test_operator__instants__expected(
    op: str, values: list[object], value: object, expected: bool
) -> None:
    assert _matches(op, values, value) is expected


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    [
        (["^[a-z]+@corp\\.example$"], "ann@corp.example", True),
        (["corp"], "ann@corp.example", True),
        (["^[a-z]+@corp\\.example$"], "Ann@corp.example", False),
        (["^x", "^a"], "ann", True),
        (["^1"], 1234, False),
        (["a"], "a" * 1024, True),
        (["a"], "a" * 1025, False),
    ],
)
def test_operator__matches__expected(values: list[object], value: object, expected: bool) -> None:
    assert _matches("matches", values, value) is expected


def test_operator__key_attribute__reads_the_user_key() -> None:
    predicate = compile_rule(Rule("key", "in", ("user-1", "user-2")))
    assert predicate({"key": "user-2"}) is True
    assert predicate({"key": "user-3"}) is False


def test_parse_semver__semver_org_precedence_chain__strictly_increasing() -> None:
    # Given the example chain of semver.org section 11
    chain = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "2.0.0",
        "2.1.0",
        "2.1.1",
    ]
    # When
    keys = [parse_semver(version) for version in chain]
    # Then
    assert all(a is not None and b is not None and a < b for a, b in pairwise(keys))


def test_parse_instant__z_offset_and_naive__same_instant() -> None:
    expected = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    for text in ("2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", "2024-01-01T00:00:00"):
        assert parse_instant(text) == expected


@pytest.mark.parametrize(
    "pattern",
    [
        "(a+)+",
        "(a*)*b",
        "(?:a+)+",
        "((a+)b)*",
        "(a{1,5}){2,}",
        "\\1",
        "(a)\\1",
        "(?P<x>a)(?P=x)",
        "(a)?(?(1)b|c)",
        "(?=x)",
        "(?!x)y",
        "(?<=x)y",
        "(?<!x)y",
        "(a|a)*x",
        "(a|ab)+c",
        ".*.*x",
        "a*a*a*x",
        "^" + "a?" * 22 + "x",
        "^" + "(a|a)" * 22 + "x",
        "^a|.*.*x",
        "(?x)a  # comment",
        "(?#note)a",
        "a" * 257,
        "(ab",
        "[z-a]",
    ],
)
def test_validate_regex__unsafe_or_invalid_pattern__rejected(pattern: str) -> None:
    assert validate_regex(pattern) != []


@pytest.mark.parametrize(
    "pattern",
    [
        "^[a-z]+@example\\.com$",
        "^\\d+(\\.\\d+)?$",
        "^user-\\d{1,6}$",
        "(?i)^admin",
        "(?:foo|bar)-\\d+",
        "^[a-z0-9._-]{1,64}@[a-z]{1,20}\\.(com|org)$",
        "[(+*]\\)",
        "\\d{3}-\\d{4}",
        ".*x",
        "^.*.*x",
        "a{,}",
        "x{}",
        "a" * 256,
    ],
)
def test_validate_regex__bounded_pattern__accepted(pattern: str) -> None:
    assert validate_regex(pattern) == []


@pytest.mark.parametrize(
    "pattern",
    ["^.*.*x", ".*x", "^" + "a?" * 21 + "a" * 21 + "x", "^" + "(a|a)" * 21 + "x"],
)
def test_matches__worst_accepted_pattern_on_1024_chars__finishes_fast(pattern: str) -> None:
    # Given a pattern at the edge of the budget and a subject that makes it backtrack
    assert validate_regex(pattern) == []
    predicate = compile_rule(Rule("s", "matches", (pattern,)))
    # When
    started = time.perf_counter()
    predicate({"key": "u", "s": "a" * 1024})
    # Then: milliseconds, far from a hang (generous bound for slow CI machines)
    assert time.perf_counter() - started < 1.0


@given(values=st.lists(value_scalars, min_size=1, max_size=5), value=scalars)
def test_in__any_scalars__equals_any_of_eq(values: list[object], value: object) -> None:
    expected = any(_matches("eq", [candidate], value) for candidate in values)
    assert _matches("in", values, value) is expected


@given(values=st.lists(value_scalars, min_size=1, max_size=5), value=scalars)
def test_not_in__present_scalar_attribute__is_negation_of_in(
    values: list[object], value: object
) -> None:
    assert _matches("not_in", values, value) is (not _matches("in", values, value))


@given(bound=finite_numbers, value=finite_numbers)
def test_gt_and_lte__numbers__complementary(bound: float, value: float) -> None:
    assert _matches("gt", [bound], value) is not _matches("lte", [bound], value)
    assert _matches("gte", [bound], value) is not _matches("lt", [bound], value)


versions = st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30))


@given(attribute=versions, bound=versions, prefix=st.sampled_from(["", "v"]))
def test_semver__generated_versions__agrees_with_tuple_order(
    attribute: tuple[int, int, int], bound: tuple[int, int, int], prefix: str
) -> None:
    text = prefix + ".".join(map(str, attribute))
    value = ".".join(map(str, bound))
    assert _matches("semver_gte", [value], text) is (attribute >= bound)
    assert _matches("semver_lt", [value], text) is (attribute < bound)


instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(attribute=instants, bound=instants)
def test_before_and_after__iso_attribute_against_epoch_value__agree_with_datetime_order(
    attribute: datetime, bound: datetime
) -> None:
    text, epoch = attribute.isoformat(), bound.timestamp()
    assert _matches("before", [epoch], text) is (attribute < bound)
    assert _matches("after", [epoch], text) is (attribute > bound)
