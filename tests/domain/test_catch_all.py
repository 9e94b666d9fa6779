"""Catch-all cohort rules: matched with nothing but a random key, or broad in every rule."""

from __future__ import annotations

import pytest

from flagsvc.domain.catch_all import catch_all_reason


def rule(attribute: str, op: str, *values: object) -> dict[str, object]:
    return {"attribute": attribute, "op": op, "values": list(values)}


CATCH_ALL = [
    pytest.param([rule("key", "neq", "\u0001never")], id="the issue's key neq"),
    pytest.param([rule("key", "not_in", "a", "b", "c")], id="key not_in"),
    pytest.param([rule("key", "contains", "")], id="key contains empty"),
    pytest.param([rule("key", "starts_with", "")], id="key starts_with empty"),
    pytest.param([rule("key", "matches", ".")], id="key matches any character"),
    pytest.param([rule("key", "matches", "^")], id="key matches empty"),
    pytest.param([rule("key", "matches", "[0-9a-f]")], id="key matches a hex digit"),
    pytest.param([rule("key", "starts_with", "u", "c", "a", "m")], id="key by first letters"),
    pytest.param([rule("country", "neq", "XX")], id="another attribute's negation"),
    pytest.param([rule("plan", "not_in", "none"), rule("seats", "neq", 0)], id="two negations"),
    pytest.param([rule("email", "contains", "")], id="contains empty"),
    pytest.param([rule("name", "matches", ".")], id="matches any character"),
    pytest.param([rule("beta", "in", True, False)], id="both booleans"),
    pytest.param([rule("age", "gt", -1e300)], id="number above the lowest"),
    pytest.param([rule("age", "lte", 1.7e308)], id="number below the highest"),
    pytest.param([rule("version", "semver_gte", "0.0.0")], id="any version"),
    pytest.param([rule("signup", "after", "0001-01-02T00:00:00Z")], id="after year 1"),
    pytest.param([rule("signup", "before", "9999-12-31T00:00:00Z")], id="before year 9999"),
    pytest.param(
        [rule("key", "neq", "x"), rule("plan", "neq", "free")], id="negations only, key first"
    ),
]

BOUNDED = [
    pytest.param([], id="no rules (matches nobody)"),
    pytest.param([rule("key", "in", "alice", "bob")], id="listed keys"),
    pytest.param([rule("key", "ends_with", "@acme.com")], id="staff e-mail keys"),
    pytest.param([rule("country", "in", "NL", "DE")], id="countries"),
    pytest.param([rule("beta", "eq", True)], id="one boolean"),
    pytest.param([rule("email", "ends_with", "@acme.com")], id="e-mail domain"),
    pytest.param([rule("age", "gte", 18)], id="adults (a real bound)"),
    pytest.param([rule("version", "semver_gte", "3.2.0")], id="recent app versions"),
    pytest.param([rule("signup", "before", "2026-01-01T00:00:00Z")], id="early sign-ups"),
    pytest.param([rule("plan", "matches", "^(gold|platinum)$")], id="a bounded pattern"),
    pytest.param(
        [rule("key", "neq", "x"), rule("country", "eq", "NL")], id="a negation and a bound"
    ),
    pytest.param([rule("country", "not_in", "US"), rule("beta", "eq", True)], id="bounded by beta"),
]


@pytest.mark.parametrize("rules", CATCH_ALL)
def test_catch_all_reason__unbounded_rules__says_why(rules):
    reason = catch_all_reason(rules)
    assert reason is not None
    assert ("random key" in reason) or ("nearly any value" in reason)


@pytest.mark.parametrize("rules", BOUNDED)
def test_catch_all_reason__bounded_rules__none(rules):
    assert catch_all_reason(rules) is None


def test_catch_all_reason__key_negation__names_a_random_key_it_matched():
    reason = catch_all_reason([rule("key", "neq", "\u0001never")])
    assert reason is not None and reason.startswith("its rules match a user who sends nothing")


def test_catch_all_reason__attribute_negation__names_the_rule():
    reason = catch_all_reason([rule("country", "not_in", "CN", "RU")])
    assert reason == (
        'every rule holds for nearly any value: country not_in ["CN", "RU"] '
        "excludes only the values it lists"
    )


def test_catch_all_reason__same_rules__same_verdict_every_time():
    borderline = [rule("key", "contains", "e")]
    assert len({catch_all_reason(borderline) for _ in range(5)}) == 1
