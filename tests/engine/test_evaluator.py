"""Evaluation: every reason, their order, result values, robustness, and snapshot loading."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

import pytest
from flagsvc_sdk.engine import ErrorCode
from flagsvc_sdk.engine import Reason
from flagsvc_sdk.engine import Result
from flagsvc_sdk.engine import Snapshot
from flagsvc_sdk.engine import SnapshotError
from flagsvc_sdk.engine import Stage
from flagsvc_sdk.engine import bucket
from flagsvc_sdk.engine import evaluate
from flagsvc_sdk.engine import evaluate_all
from flagsvc_sdk.engine import load_snapshot
from hypothesis import given
from hypothesis import strategies as st

Doc = dict[str, Any]
NL_RULE = {"attribute": "country", "op": "in", "values": ["NL", "BE"]}


@pytest.fixture(scope="module")
def snapshot(
    build_snapshot: Callable[..., Snapshot],
    flag_doc: Callable[..., Doc],
    cohort_doc: Callable[..., Doc],
) -> Snapshot:
    """One flag per situation; user-9 is excluded where it matters, user-1 is in beta."""
    excluded = ["user-9"]
    flags = [
        flag_doc("off", stage="off", cohorts=["beta"], exclusions=excluded),
        flag_doc("released", stage="released", payload={"color": "blue"}, exclusions=excluded),
        flag_doc("killed", stage="released", killed=True, exclusions=excluded),
        flag_doc("early", stage="early_access", cohorts=["beta", "nl"], rollout_percent=100),
        flag_doc("general", stage="general", cohorts=["beta"], rollout_percent=100),
        flag_doc("general-0", stage="general", cohorts=["beta"], payload="B"),
        flag_doc("empty-cohort", stage="early_access", cohorts=["nobody"]),
    ]
    beta = cohort_doc("beta", members=["user-1", "user-9"])
    nl = cohort_doc("nl", members=["user-2"], rules=[NL_RULE])
    return build_snapshot(flags, [beta, nl, cohort_doc("nobody")])


@pytest.mark.parametrize(
    ("flag_key", "context", "reason", "enabled"),
    [
        ("missing", {"key": "user-1"}, Reason.ERROR, False),
        ("released", {"country": "NL"}, Reason.STATIC, True),  # keyless
        ("killed", {"key": "user-1"}, Reason.DISABLED, False),
        ("released", {"key": "user-9"}, Reason.TARGETING_MATCH, False),  # excluded
        ("off", {"key": "user-1"}, Reason.DISABLED, False),
        ("released", {"key": "anyone"}, Reason.STATIC, True),
        ("early", {"key": "user-1"}, Reason.TARGETING_MATCH, True),
        ("general", {"key": "anyone"}, Reason.SPLIT, True),
        ("early", {"key": "anyone"}, Reason.DEFAULT, False),
    ],
)
def test_evaluate__each_situation__its_reason(
    snapshot: Snapshot, flag_key: str, context: Doc, reason: Reason, enabled: bool
) -> None:
    result = evaluate(snapshot, flag_key, context)
    assert (result.reason, result.enabled) == (reason, enabled)


def test_evaluate__unknown_flag__flag_not_found_error_code(snapshot: Snapshot) -> None:
    assert evaluate(snapshot, "missing", {"key": "u"}) == Result(
        None, False, Reason.ERROR, None, None, ErrorCode.FLAG_NOT_FOUND
    )


@pytest.mark.parametrize(
    "context",
    [
        {"key": ""},
        {"key": 7.0},
        {"key": True},
        {"key": ["u"]},
        {"key": "\udcff"},
        "user-1",
        ["user-1"],
        None,
        5,
    ],
    ids=repr,
)
def test_evaluate__invalid_context__error_invalid_context(snapshot: Snapshot, context: Any) -> None:
    result = evaluate(snapshot, "released", context)
    assert (result.reason, result.error_code, result.value) == (
        Reason.ERROR,
        ErrorCode.INVALID_CONTEXT,
        None,
    )


@pytest.mark.parametrize(
    ("flag_key", "user_key", "reason"),
    [
        ("killed", "user-9", Reason.DISABLED),  # kill switch before exclusions
        ("off", "user-9", Reason.TARGETING_MATCH),  # exclusions before stage off
        ("off", "user-1", Reason.DISABLED),  # stage off before cohorts
    ],
)
def test_evaluate__two_rules_apply__earlier_rule_wins(
    snapshot: Snapshot, flag_key: str, user_key: str, reason: Reason
) -> None:
    assert evaluate(snapshot, flag_key, {"key": user_key}).reason is reason


def test_evaluate__user_in_two_cohorts__first_in_flag_order_wins(snapshot: Snapshot) -> None:
    result = evaluate(snapshot, "early", {"key": "user-1", "country": "NL"})
    assert (result.reason, result.matched_cohort) == (Reason.TARGETING_MATCH, "beta")


def test_evaluate__cohort_rules_match__that_cohort(snapshot: Snapshot) -> None:
    result = evaluate(snapshot, "early", {"key": "user-5", "country": "BE"})
    assert (result.reason, result.matched_cohort) == (Reason.TARGETING_MATCH, "nl")


def test_evaluate__member_failing_the_rules__still_in_by_membership(snapshot: Snapshot) -> None:
    result = evaluate(snapshot, "early", {"key": "user-2", "country": "US"})
    assert (result.reason, result.matched_cohort) == (Reason.TARGETING_MATCH, "nl")


def test_evaluate__cohort_without_members_and_rules__matches_nobody(snapshot: Snapshot) -> None:
    assert evaluate(snapshot, "empty-cohort", {"key": "user-1"}).reason is Reason.DEFAULT


def test_evaluate__general_cohort_member_at_0_percent__on_by_cohort(snapshot: Snapshot) -> None:
    result = evaluate(snapshot, "general-0", {"key": "user-1"})
    assert result == Result("B", True, Reason.TARGETING_MATCH, Stage.GENERAL, "beta", None, "on")


@pytest.mark.parametrize(
    ("flag_key", "user_key", "expected"),
    [
        ("released", "u", Result({"color": "blue"}, True, Reason.STATIC, Stage.RELEASED, None, None, "on")),
        ("general", "u", Result(True, True, Reason.SPLIT, Stage.GENERAL, None, None, "on")),
        ("general-0", "u", Result(None, False, Reason.DEFAULT, Stage.GENERAL)),
        ("killed", "u", Result(False, False, Reason.DISABLED, Stage.RELEASED, None, None, "off")),
        ("off", "u", Result(False, False, Reason.DISABLED, Stage.OFF, None, None, "off")),
    ],
)  # fmt: skip
def test_evaluate__variation_served__value_and_key_or_none_for_the_callers_default(
    snapshot: Snapshot, flag_key: str, user_key: str, expected: Result
) -> None:
    assert evaluate(snapshot, flag_key, {"key": user_key}) == expected


def test_evaluate__same_outcome_twice__same_prebuilt_result(snapshot: Snapshot) -> None:
    first = evaluate(snapshot, "released", {"key": "a"})
    assert evaluate(snapshot, "released", {"key": "b"}) is first


class _ExplodingContext(Mapping[str, object]):
    """A mapping whose every read fails, as product code might pass by mistake."""

    def __getitem__(self, key: str) -> object:
        raise RuntimeError("boom")

    def get(self, key: str, default: object = None) -> object:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_evaluate__context_that_raises__general_error(snapshot: Snapshot) -> None:
    result = evaluate(snapshot, "released", _ExplodingContext())
    assert (result.reason, result.error_code) == (Reason.ERROR, ErrorCode.GENERAL)


@pytest.mark.parametrize("bad", [None, "snapshot", {}, 5])
def test_evaluate__not_a_snapshot__general_error(bad: Any) -> None:
    assert evaluate(bad, "f", {"key": "u"}).error_code is ErrorCode.GENERAL
    assert evaluate_all(bad, {"key": "u"}) == {}


def test_evaluate__unhashable_flag_key__general_error(snapshot: Snapshot) -> None:
    assert evaluate(snapshot, ["f"], {"key": "u"}).error_code is ErrorCode.GENERAL  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
contexts = json_values | st.dictionaries(
    st.sampled_from(["key", "country", "plan", "age"]) | st.text(max_size=8),
    json_values,
    max_size=5,
)


@given(context=contexts, flag_key=st.sampled_from(["off", "early", "general", "x"]) | st.text())
def test_evaluate__arbitrary_json_context__returns_a_result(
    snapshot: Snapshot, context: Any, flag_key: str
) -> None:
    assert isinstance(evaluate(snapshot, flag_key, context), Result)


def test_evaluate_all__context__every_flag_in_snapshot_order(snapshot: Snapshot) -> None:
    results = evaluate_all(snapshot, {"key": "user-1"})
    assert list(results) == list(snapshot.flag_keys)
    assert results["early"].matched_cohort == "beta"


def test_snapshot__flag_keys__in_wire_order(snapshot: Snapshot) -> None:
    assert snapshot.flag_keys[:3] == ("off", "released", "killed")


def test_snapshot__mutation__refused(snapshot: Snapshot) -> None:
    with pytest.raises(TypeError):
        snapshot.flags["new"] = snapshot.flags["off"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.version = 1  # type: ignore[misc]


def test_result__assignment__refused() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Result(True, True, Reason.STATIC).enabled = False  # type: ignore[misc]


def test_load_snapshot__wire_example__compiled(snapshot: Snapshot) -> None:
    flag = snapshot.flags["general-0"]
    assert (flag.threshold, flag.hash_prefix) == (0, "general-0:a1b2c3d4:")
    assert snapshot.cohorts["beta"].members == frozenset({"user-1", "user-9"})
    assert (snapshot.environment, snapshot.version, snapshot.spec_version) == ("production", 42, 2)


def test_load_snapshot__million_members__membership_works(
    build_snapshot: Callable[..., Snapshot],
    flag_doc: Callable[..., Doc],
    cohort_doc: Callable[..., Doc],
) -> None:
    # Given a cohort as large as the wire contract allows
    members = [f"user-{i}" for i in range(1_000_000)]
    big = build_snapshot(
        [flag_doc(stage="early_access", cohorts=["big"])], [cohort_doc("big", members=members)]
    )
    # Then
    assert evaluate(big, "new-checkout", {"key": "user-999999"}).reason is Reason.TARGETING_MATCH
    assert evaluate(big, "new-checkout", {"key": "user-1000000"}).reason is Reason.DEFAULT


def _broken(doc: Doc, path: list[str], value: object) -> Doc:
    """Return a copy of ``doc`` with the field at ``path`` set to ``value``."""
    copy: Doc = {**doc}
    if len(path) == 1:
        copy[path[0]] = value
    else:
        copy[path[0]] = _broken(copy[path[0]], path[1:], value)
    return copy


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["spec_version"], 3, "snapshot.spec_version: must be 1 or 2"),
        (["flags", "f", "type"], "json", "flags['f'].type: must be one of"),
        (["flags", "f", "variations"], {"on": 1, "off": False}, "flags['f'].variations['on']"),
        (["flags", "f", "on"], "yes", "flags['f'].on: must name one of the variations"),
        (["version"], -1, "snapshot.version"),
        (["flags"], [], "snapshot.flags: must be an object"),
        (["flags", "f", "stage"], "retired", "flags['f'].stage: must be one of"),
        (["flags", "f", "rollout_percent"], 12.345, "flags['f'].rollout_percent"),
        (["flags", "f", "rollout_percent"], True, "flags['f'].rollout_percent"),
        (["flags", "f", "killed"], 0, "flags['f'].killed: must be a boolean"),
        (["flags", "f", "key"], "g", "flags['f'].key: must equal"),
        (["flags", "f", "cohorts"], ["c", "zzz"], "flags['f'].cohorts[1]: unknown cohort 'zzz'"),
        (["flags", "f", "exclusions"], ["u", 1], "flags['f'].exclusions[1]: must be a string"),
        (["cohorts", "c", "members"], "u", "cohorts['c'].members: must be a list"),
        (["cohorts", "c", "opt_in"], None, "cohorts['c'].opt_in: must be a boolean"),
        (["cohorts", "c", "rules"], [{"attribute": "a", "op": "gt", "values": ["1"]}], "rules[0]"),
    ],
)
def test_load_snapshot__bad_field__snapshot_error_names_the_path(
    snapshot_doc: Callable[..., Doc],
    flag_doc: Callable[..., Doc],
    cohort_doc: Callable[..., Doc],
    path: list[str],
    value: object,
    message: str,
) -> None:
    # Given a valid document with one field broken
    doc = _broken(snapshot_doc([flag_doc("f", cohorts=["c"])], [cohort_doc("c")]), path, value)
    # When / Then
    with pytest.raises(SnapshotError, match=re.escape(message)):
        load_snapshot(doc)


def test_load_snapshot__missing_field__snapshot_error_says_required(
    snapshot_doc: Callable[..., Doc], flag_doc: Callable[..., Doc]
) -> None:
    doc = snapshot_doc([flag_doc("f")])
    del doc["flags"]["f"]["salt"]
    with pytest.raises(SnapshotError, match=r"flags\['f'\].salt: is required"):
        load_snapshot(doc)


def test_load_snapshot__not_an_object__snapshot_error() -> None:
    with pytest.raises(SnapshotError, match="snapshot: must be an object"):
        load_snapshot([])  # type: ignore[arg-type]


@pytest.mark.parametrize("user_key", [1, 2, 9, 42, -7, 10**40])
def test_evaluate__integer_key__same_answer_as_its_decimal_string(
    build_snapshot: Callable[..., Snapshot],
    flag_doc: Callable[..., Doc],
    cohort_doc: Callable[..., Doc],
    user_key: int,
) -> None:
    # Given members, exclusions, a rule on the key and a rollout, all written as strings
    digits = str(user_key)
    on_key = cohort_doc("on-key", rules=[{"attribute": "key", "op": "eq", "values": ["42"]}])
    members = cohort_doc("members", members=["1", "-7"])
    snapshot = build_snapshot(
        [
            flag_doc("rule", stage="early_access", cohorts=["on-key"]),
            flag_doc("members", stage="early_access", cohorts=["members"]),
            flag_doc("excluded", stage="released", exclusions=["2"]),
            flag_doc("rollout", stage="general", rollout_percent=50),
        ],
        [on_key, members],
    )
    # Then the integer is that user, everywhere
    for flag_key in ("rule", "members", "excluded", "rollout"):
        as_int = evaluate(snapshot, flag_key, {"key": user_key, "plan": "x"})
        assert as_int == evaluate(snapshot, flag_key, {"key": digits, "plan": "x"}), flag_key
        assert as_int.error_code is None


def test_bucket__lone_surrogate__value_error_not_a_crash() -> None:
    with pytest.raises(ValueError, match="valid Unicode"):
        bucket("f", "s", "user-\udcff")
    with pytest.raises(ValueError, match="valid Unicode"):
        bucket("f", "s\ud800", "user")


def test_flag__salt_with_lone_surrogate__refused(
    build_snapshot: Callable[..., Snapshot], flag_doc: Callable[..., Doc]
) -> None:
    snapshot = build_snapshot([flag_doc("f", stage="general", rollout_percent=50)])
    flag = snapshot.index["f"]
    with pytest.raises(ValueError, match="valid Unicode"):
        dataclasses.replace(flag, salt="s\udcff")


def test_evaluate__keyless_context__key_needed_only_by_a_partial_ramp(
    build_snapshot: Callable[..., Snapshot], flag_doc: Callable[..., Doc]
) -> None:
    snapshot = build_snapshot(
        [
            flag_doc("half", stage="general", rollout_percent=50),
            flag_doc("none", stage="general", rollout_percent=0),
            flag_doc("all", stage="general", rollout_percent=100),
        ]
    )
    assert evaluate(snapshot, "half", {}).error_code is ErrorCode.TARGETING_KEY_MISSING
    assert (evaluate(snapshot, "none", {}).reason, evaluate(snapshot, "none", {}).value) == (
        Reason.DEFAULT,
        False,
    )
    assert (evaluate(snapshot, "all", {}).reason, evaluate(snapshot, "all", {}).value) == (
        Reason.SPLIT,
        True,
    )


def test_load_snapshot__spec_1_payload__typed_variations_as_the_migration_reads_it(
    snapshot_doc: Callable[..., Doc],
) -> None:
    # Given a spec-1 document (a cache file written before typed values)
    flag = {"key": "f", "salt": "s", "stage": "released", "rollout_percent": 0, "killed": False,
            "cohorts": [], "exclusions": [], "payload": {"color": "blue"}}  # fmt: skip
    doc = {"spec_version": 1, "environment": "e", "version": 3, "flags": {"f": flag}, "cohorts": {}}
    # When it loads
    loaded = load_snapshot(doc)
    # Then the payload is the flag's on variation, off answers the caller's default
    values = loaded.index["f"].values
    assert (values.type, dict(values.values), values.on, values.off) == (
        "object",
        {"on": {"color": "blue"}},
        "on",
        None,
    )
    assert evaluate(loaded, "f", {"key": "u"}).value == {"color": "blue"}
