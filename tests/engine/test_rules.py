"""Rules: validation of rule JSON (what the service uses for API input) and compilation."""

from __future__ import annotations

from typing import Any

import pytest
from flagsvc_sdk.engine import MAX_VALUES
from flagsvc_sdk.engine import OPERATORS
from flagsvc_sdk.engine import Rule
from flagsvc_sdk.engine import RuleError
from flagsvc_sdk.engine import compile_rule
from flagsvc_sdk.engine import compile_rules
from flagsvc_sdk.engine import parse_rule
from flagsvc_sdk.engine import validate_rule
from hypothesis import given
from hypothesis import strategies as st


def _rule(
    attribute: object = "country", op: object = "in", values: object = None
) -> dict[str, Any]:
    return {"attribute": attribute, "op": op, "values": ["NL"] if values is None else values}


def test_validate_rule__valid_rule__no_problems() -> None:
    assert validate_rule(_rule()) == []


@pytest.mark.parametrize("rule", [None, "country in NL", ["country", "in", ["NL"]], 3])
def test_validate_rule__not_an_object__one_problem(rule: object) -> None:
    assert validate_rule(rule) == ["rule: must be an object"]


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        (_rule(attribute=""), "attribute"),
        (_rule(attribute="a" * 101), "attribute"),
        (_rule(attribute=5), "attribute"),
        ({"op": "in", "values": ["NL"]}, "attribute"),
        (_rule(op="like"), "op"),
        (_rule(op=None), "op"),
        (_rule(values=[]), "values"),
        (_rule(values="NL"), "values"),
        (_rule(values=list(range(MAX_VALUES + 1))), "values"),
        ({"attribute": "country", "op": "in"}, "values"),
        (_rule(op="gt", values=[1, "2"]), "values[1]"),
        (_rule(op="semver_lt", values=["1.2"]), "values[0]"),
        (_rule(op="before", values=["soon"]), "values[0]"),
        (_rule(op="matches", values=["ok", "(a+)+"]), "values[1]"),
        (_rule(op="eq", values=[None]), "values[0]"),
        (_rule(op="contains", values=[["x"]]), "values[0]"),
    ],
)
def test_validate_rule__one_bad_field__problem_names_that_field(
    rule: dict[str, Any], field: str
) -> None:
    # When
    problems = validate_rule(rule)
    # Then
    assert len(problems) == 1
    assert problems[0].startswith(f"{field}: ")


def test_validate_rule__bad_attribute_and_op__reports_both() -> None:
    problems = validate_rule(_rule(attribute="", op="like"))
    assert [problem.split(":")[0] for problem in problems] == ["attribute", "op"]


def test_validate_rule__unknown_op__lists_the_known_ops() -> None:
    (problem,) = validate_rule(_rule(op="like"))
    assert all(op in problem for op in OPERATORS)


def test_validate_rule__max_values__accepted() -> None:
    assert validate_rule(_rule(values=list(range(MAX_VALUES)))) == []


def test_validate_rule__extra_field__left_to_the_callers_schema() -> None:
    assert validate_rule({**_rule(), "negate": True}) == []


def test_parse_rule__valid_json__rule_with_tuple_values() -> None:
    assert parse_rule(_rule(values=["NL", "DE"])) == Rule("country", "in", ("NL", "DE"))


def test_parse_rule__invalid_json__rule_error_with_every_problem() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(_rule(attribute="", op="like"))
    assert len(caught.value.problems) == 2


def test_compile_rule__hand_built_invalid_rule__rule_error() -> None:
    with pytest.raises(RuleError, match="values"):
        compile_rule(Rule("age", "gt", ("18",)))


def test_compile_rules__no_rules__none_because_they_match_nobody() -> None:
    assert compile_rules([]) is None


def test_compile_rules__several_rules__all_must_match() -> None:
    # Given
    predicate = compile_rules(
        [Rule("country", "eq", ("NL",)), Rule("plan", "in", ("gold", "platinum"))]
    )
    assert predicate is not None
    # Then
    assert predicate({"key": "u", "country": "NL", "plan": "gold"}) is True
    assert predicate({"key": "u", "country": "NL", "plan": "free"}) is False
    assert predicate({"key": "u", "country": "DE", "plan": "gold"}) is False
    assert predicate({"key": "u", "plan": "gold"}) is False


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
valid_rules = st.sampled_from(
    [
        Rule("a", "eq", ("x", 1, True)),
        Rule("a", "not_in", ("x",)),
        Rule("a", "contains", ("x",)),
        Rule("a", "gte", (0,)),
        Rule("a", "semver_lt", ("2.0.0",)),
        Rule("a", "after", ("2024-01-01",)),
        Rule("a", "matches", ("^x",)),
    ]
)


@given(rule=valid_rules, value=json_values)
def test_compiled_rule__any_json_attribute__returns_bool_never_raises(
    rule: Rule, value: object
) -> None:
    assert compile_rule(rule)({"key": "u", "a": value}) in (True, False)
