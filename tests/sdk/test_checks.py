"""The compiled fast paths agree with ``engine.evaluate`` on generated flags and contexts.

Checks and resolvers are tested on their own, and ``Client.is_enabled`` end to end, since
it runs the set shape of a plan inline (``flagsvc_sdk._checks``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

import pytest
from flagsvc_sdk import Client
from flagsvc_sdk._answers import Answers
from flagsvc_sdk._checks import Tally
from flagsvc_sdk._checks import compile_check
from flagsvc_sdk._checks import compile_plan
from flagsvc_sdk._checks import compile_resolver
from flagsvc_sdk._checks import compile_value
from flagsvc_sdk.engine import Snapshot
from flagsvc_sdk.engine import canonical_context
from flagsvc_sdk.engine import evaluate
from flagsvc_sdk.engine import is_keyless
from flagsvc_sdk.engine import load_snapshot
from flagsvc_sdk.engine import user_key_of
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from .conftest import FakeService
from .conftest import cohort_doc
from .conftest import eu_rollout_doc
from .conftest import flag_doc
from .conftest import snapshot_doc

USERS = [f"u{i}" for i in range(8)]
ODD_KEYS = [7, -3, 10**30, True, 1.0, "\udcff", "u\ud800x", "müller", "é"]
"""Keys only the slow paths meet: integers (canonical "7"), bools and floats (invalid),
lone surrogates (invalid), non-ASCII text (valid, checked beyond ``isascii``)."""
STRINGS = st.sampled_from(["NL", "DE", "US", "gold", "", "1", "1.2.0"])
SCALARS = st.one_of(STRINGS, st.integers(-3, 3), st.booleans(), st.floats(-2, 2, allow_nan=False))
RULES = st.one_of(
    st.fixed_dictionaries(
        {
            "attribute": st.sampled_from(["country", "plan", "seats"]),
            "op": st.sampled_from(["in", "eq", "neq", "not_in"]),
            "values": st.lists(SCALARS, min_size=1, max_size=3),
        }
    ),
    st.fixed_dictionaries(
        {
            "attribute": st.sampled_from(["country", "plan"]),
            "op": st.sampled_from(["in", "eq"]),
            "values": st.lists(STRINGS, min_size=1, max_size=3),
        }
    ),
    st.fixed_dictionaries(
        {
            "attribute": st.just("seats"),
            "op": st.sampled_from(["gt", "lte"]),
            "values": st.lists(st.integers(-3, 3), min_size=1, max_size=2),
        }
    ),
)


def _read_only(context: Any) -> Any:
    """A mapping that is not a ``dict``: the plan's inline path must hand it to the check."""
    return MappingProxyType(context) if isinstance(context, dict) else context


ATTRIBUTE_VALUES = st.one_of(
    SCALARS,
    st.none(),
    st.lists(STRINGS, max_size=2),
    st.dictionaries(st.just("a"), STRINGS, max_size=1),
)
COUNTRIES = st.one_of(st.sampled_from(["NL", "DE", "u1"]), ATTRIBUTE_VALUES)  # set hits too
OPTIONAL_ATTRIBUTES = {"country": COUNTRIES, "plan": ATTRIBUTE_VALUES, "seats": ATTRIBUTE_VALUES}
CONTEXTS = st.one_of(
    st.fixed_dictionaries(
        {"key": st.sampled_from([*USERS, *ODD_KEYS, "", None, 5])}, optional=OPTIONAL_ATTRIBUTES
    ),
    st.fixed_dictionaries({}, optional=OPTIONAL_ATTRIBUTES),  # keyless: only rules decide
    st.sampled_from([None, "u1", ["u1"], {}, 3]),
)
VALID_CONTEXTS = st.fixed_dictionaries(
    {"key": st.sampled_from(USERS)}, optional={"country": COUNTRIES, "plan": ATTRIBUTE_VALUES}
)
MAPPING_CONTEXTS = st.one_of(VALID_CONTEXTS, CONTEXTS, CONTEXTS.map(_read_only))


@st.composite
def snapshots(draw: st.DrawFn) -> dict[str, Any]:
    cohorts = [
        cohort_doc(
            f"c{i}",
            members=draw(st.lists(st.sampled_from([*USERS, "7", "müller"]), max_size=3)),
            rules=draw(st.lists(RULES, max_size=2)),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    flag = flag_doc(
        "f",
        stage=draw(st.sampled_from(["off", "early_access", "general", "released"])),
        rollout_percent=draw(st.sampled_from([0, 0.01, 25, 50, 99.99, 100])),
        killed=draw(st.booleans()),
        cohorts=draw(st.lists(st.sampled_from([c["key"] for c in cohorts]), unique=True))
        if cohorts
        else [],
        exclusions=draw(st.lists(st.sampled_from(USERS), max_size=2)),
    )
    return snapshot_doc([_values(draw, flag)], cohorts)


def _values(draw: st.DrawFn, flag: dict[str, Any]) -> dict[str, Any]:
    """Half the flags are string flags: off may be none, cohorts may serve their own."""
    if draw(st.booleans()):
        return flag
    variations = {"a": "A", "b": "", "c": "C"}
    own = {
        c: draw(st.sampled_from(list(variations))) for c in flag["cohorts"] if draw(st.booleans())
    }
    off = draw(st.sampled_from(["a", "b", None]))
    return flag | {"type": "string", "variations": variations, "on": "c", "off": off,
                   "cohort_variations": own}  # fmt: skip


@st.composite
def set_shaped(draw: st.DrawFn) -> dict[str, Any]:
    """Flags a plan runs inline: no cohort, a members-only one, or one string-set rule."""
    rule = {
        "attribute": draw(st.sampled_from(["country", "key"])),
        "op": draw(st.sampled_from(["in", "eq"])),
        "values": draw(st.lists(st.sampled_from([*USERS, "NL", "DE", ""]), min_size=1)),
    }
    members = draw(st.lists(st.sampled_from(USERS), max_size=4))
    cohort = draw(
        st.sampled_from([None, cohort_doc("c", members=members), cohort_doc("c", rules=[rule])])
    )
    flag = flag_doc(
        "f",
        stage=draw(st.sampled_from(["early_access", "general"])),
        rollout_percent=draw(st.sampled_from([0, 0.01, 25, 50, 99.99, 100])),
        cohorts=[] if cohort is None else ["c"],
    )
    return snapshot_doc([_values(draw, flag)], [] if cohort is None else [cohort])


ANY_SHAPE = st.one_of(snapshots(), set_shaped())
KEYLESS_IN_COHORT = snapshot_doc(
    [flag_doc("f", stage="early_access", cohorts=["c0", "c2"])],
    [
        cohort_doc("c0"),
        cohort_doc("c2", rules=[{"attribute": "seats", "op": "gt", "values": [-1]}]),
    ],
)
"""A keyless context is in cohort ``c2`` by its rule (the engine's ``_keyless``): the case
Hypothesis found where the check, never handed a keyless context, was held to count it."""
KEYLESS_CONTEXTS = [{"seats": 0}, {"key": None, "seats": 1}, MappingProxyType({"seats": 2})]
KEYLESS_IN_SET_SHAPE = snapshot_doc(
    [flag_doc("f", cohorts=["eu"], rollout_percent=50)],
    [cohort_doc("eu", rules=[{"attribute": "country", "op": "in", "values": ["NL", "DE"]}])],
)
"""The same on a flag whose cohort test runs inline (the set shape): a keyless context in
the cohort, one outside it in the ramp (``TARGETING_KEY_MISSING``), and a valid one."""
KEYLESS_SET_CONTEXTS = [
    {"country": "NL"},
    {"key": None, "country": "US"},
    {"key": "u1", "country": "DE"},
]


@contextmanager
def _client(doc: dict[str, Any]) -> Iterator[Client]:
    """A real client on ``doc``, served once by a fake service (no polling, no metrics)."""
    client = Client(
        "http://flags.test",
        "k",
        transport=FakeService(doc).transport,
        stream=False,
        poll_interval=3600,
        send_metrics=False,
    )
    try:
        assert client.wait_until_ready(5)
        yield client
    finally:
        client.close()


@settings(max_examples=600, deadline=None)
@given(doc=ANY_SHAPE, contexts=st.lists(MAPPING_CONTEXTS, min_size=1, max_size=6))
def test_check__generated_flags_and_contexts__agrees_with_engine(
    doc: dict[str, Any], contexts: list[Any]
) -> None:
    # (the caller hands a check only valid contexts, in canonical form)
    snapshot = load_snapshot(doc)
    check = compile_check(snapshot.index["f"], Tally())
    for context in contexts:
        result = evaluate(snapshot, "f", context)
        canonical = canonical_context(context)
        if canonical is None:  # invalid, or keyless (the client asks the engine then)
            assert is_keyless(context) or result.error_code is not None, (context, result)
        else:
            assert check(canonical, canonical["key"]) is result.enabled, (context, result)


@settings(max_examples=600, deadline=None)
@given(doc=ANY_SHAPE, contexts=st.lists(MAPPING_CONTEXTS, min_size=1, max_size=6))
def test_resolver__generated_flags_and_contexts__agrees_with_engine(
    doc: dict[str, Any], contexts: list[Any]
) -> None:
    snapshot = load_snapshot(doc)
    answers = Answers(snapshot.version)
    resolve = compile_resolver(snapshot, snapshot.index["f"], answers, Tally())
    for context in contexts:
        assert resolve(context) is answers.of(evaluate(snapshot, "f", context)), context


def _cohort_hits(snapshot: Snapshot, contexts: list[Any]) -> int:
    return sum(evaluate(snapshot, "f", c).matched_cohort is not None for c in contexts)


def _adopters(snapshot: Snapshot, contexts: list[Any]) -> set[str]:
    """The user keys (canonical) answered on through a cohort: what every path notes."""
    hits = [c for c in contexts if evaluate(snapshot, "f", c).matched_cohort is not None]
    return {key for key in map(user_key_of, hits) if key is not None}


@settings(max_examples=600, deadline=None)
@given(doc=ANY_SHAPE, contexts=st.lists(MAPPING_CONTEXTS, min_size=1, max_size=6))
def test_value__generated_flags_and_contexts__agrees_with_engine(
    doc: dict[str, Any], contexts: list[Any]
) -> None:
    snapshot = load_snapshot(doc)
    flag, tally = snapshot.index["f"], Tally()
    value_of = compile_value(flag, compile_resolver(snapshot, flag, Answers(1), tally), tally)
    for context in contexts:
        assert value_of(context) == evaluate(snapshot, "f", context).value, context


@settings(max_examples=300, deadline=None)
@given(doc=ANY_SHAPE, contexts=st.lists(MAPPING_CONTEXTS, min_size=1, max_size=6))
def test_typed_getters__generated__the_engines_value_or_the_default(
    doc: dict[str, Any], contexts: list[Any]
) -> None:
    snapshot = load_snapshot(doc)
    string_flag = snapshot.index["f"].values.type == "string"
    with _client(doc) as client:
        for context in contexts:
            result = evaluate(snapshot, "f", context)
            served = result.value if string_flag and result.value is not None else "dflt"
            assert client.get_string("f", context, "dflt") == served, (context, result)
            details = client.get_string_details("f", context, "dflt")
            assert (details.value, details.variation) == (
                served,
                result.variation if string_flag else None,
            )
            mismatch = None if string_flag else "TYPE_MISMATCH"
            assert details.error_code == (mismatch or result.error_code), (context, result)


@settings(max_examples=300, deadline=None)
@given(doc=ANY_SHAPE, contexts=st.lists(MAPPING_CONTEXTS, min_size=1, max_size=6))
@example(doc=KEYLESS_IN_COHORT, contexts=KEYLESS_CONTEXTS)
@example(doc=KEYLESS_IN_SET_SHAPE, contexts=KEYLESS_SET_CONTEXTS)
def test_typed_getters__generated__the_answer_of_evaluate_counted_once_cohorts_like_the_engine(
    doc: dict[str, Any], contexts: list[Any]
) -> None:
    # The getters run the set shape inline: same answer (reason, cohort, version, the
    # shared object itself) as the general path, each call counted once.
    snapshot = load_snapshot(doc)
    value_type = snapshot.index["f"].values.type
    getter, details = (f"get_{value_type.value}", f"get_{value_type.value}_details")
    default = "dflt" if value_type.value == "string" else True
    with _client(doc) as client:
        for context in contexts:
            expected = client.evaluate("f", context, default)
            assert getattr(client, getter)("f", context, default) == expected.value, context
            answer = getattr(client, details)("f", context, default)
            assert answer == expected, (context, answer, expected)
            if expected.variation is not None and expected.error_code is None:
                assert answer is expected  # the shared answer, not a copy
        taken = client._counters.take().get("f")
        assert taken is not None and taken.evaluations == 3 * len(contexts)
        assert taken.cohort == 3 * _cohort_hits(snapshot, contexts)
        assert set(taken.adopters) == _adopters(snapshot, contexts)


TYPED = {  # type: (variations a / b / c, the caller's default); booleans: on / off implied
    "boolean": ({}, False),
    "integer": ({"a": 10, "b": 50, "c": 100}, -1),
    "float": ({"a": 0.1, "b": 0.5, "c": 0.9}, -1.0),
    "object": ({"a": {"v": 1}, "b": [2], "c": {"v": 3}}, {}),
    "string": ({"a": "A", "b": "B", "c": "C"}, "dflt"),
}


@pytest.mark.parametrize("value_type", sorted(TYPED))
@pytest.mark.parametrize(
    "context",
    [
        {"key": "u1", "country": "NL"},
        {"key": "u2", "country": "US"},
        {"key": "u7", "country": "US"},
        {"key": "ü", "country": "NL"},
        {"key": 7, "country": "US"},
        {"country": "NL"},
        {"country": "US"},
        {"key": "u1", "country": ["NL"]},
        {"key": ""},
        MappingProxyType({"key": "u1", "country": "NL"}),
    ],
    ids=repr,
)
def test_typed_getters__set_shape_every_type__the_engines_answer(
    value_type: str, context: Any
) -> None:
    variations, default = TYPED[value_type]
    doc = eu_rollout_doc()
    typed = {"type": value_type, "variations": variations, "on": "b", "off": "a",
             "cohort_variations": {"eu": "c"}} if variations else {}  # fmt: skip
    doc["flags"]["f"] = doc["flags"].pop("new-checkout") | {"key": "f", **typed}
    snapshot = load_snapshot(doc)
    result = evaluate(snapshot, "f", context)
    served = result.value if result.error_code is None else default
    with _client(doc) as client:
        assert client._plans["f"].served is dict  # the inline path runs
        assert getattr(client, f"get_{value_type}")("f", context, default) == served
        details = getattr(client, f"get_{value_type}_details")("f", context, default)
        assert (details.value, details.reason, details.variation, details.error_code) == (
            served,
            result.reason,
            result.variation,
            result.error_code,
        )
        taken = client._counters.take().get("f")  # both getters noted the early adopter
        assert set(taken.adopters if taken else ()) == _adopters(snapshot, [context])
        other = "string" if value_type != "string" else "integer"
        mismatch = getattr(client, f"get_{other}_details")("f", context, TYPED[other][1])
        assert (mismatch.value, mismatch.error_code) == (TYPED[other][1], "TYPE_MISMATCH")


@settings(max_examples=300, deadline=None)
@given(doc=ANY_SHAPE, contexts=st.lists(MAPPING_CONTEXTS, min_size=1, max_size=6))
@example(doc=KEYLESS_IN_COHORT, contexts=KEYLESS_CONTEXTS)
@example(doc=KEYLESS_IN_SET_SHAPE, contexts=KEYLESS_SET_CONTEXTS)
def test_check_and_resolver__generated__count_cohort_answers_like_the_engine(
    doc: dict[str, Any], contexts: list[Any]
) -> None:
    # A check counts the engine's cohort answers among the contexts it is handed: valid
    # ones only (a keyless one goes to the resolver: is_enabled's counts, further down,
    # hold the two together); the resolver counts them among all contexts.
    snapshot = load_snapshot(doc)
    flag, checked, resolved = snapshot.index["f"], Tally(), Tally()
    check = compile_check(flag, checked)
    resolve = compile_resolver(snapshot, flag, Answers(snapshot.version), resolved)
    for context in contexts:
        canonical = canonical_context(context)
        if canonical is not None:  # (the caller hands a check only valid contexts)
            check(canonical, canonical["key"])
        resolve(context)
    handed = [context for context in contexts if canonical_context(context) is not None]
    assert checked.cohort == _cohort_hits(snapshot, handed)
    assert resolved.cohort == _cohort_hits(snapshot, contexts)


@settings(max_examples=300, deadline=None)
@given(doc=ANY_SHAPE, contexts=st.lists(MAPPING_CONTEXTS, min_size=1, max_size=6))
@example(doc=KEYLESS_IN_COHORT, contexts=KEYLESS_CONTEXTS)
@example(doc=KEYLESS_IN_SET_SHAPE, contexts=KEYLESS_SET_CONTEXTS)
def test_is_enabled__generated_flags_and_contexts__agrees_with_engine(
    doc: dict[str, Any], contexts: list[Any]
) -> None:
    snapshot = load_snapshot(doc)
    with _client(doc) as client:
        for context in contexts:
            result = evaluate(snapshot, "f", context)
            for default in (True, False):
                expected = default if result.error_code is not None else result.enabled
                assert client.is_enabled("f", context, default) is expected, (context, result)
        taken = client._counters.take().get("f")
        assert (taken.cohort if taken else 0) == 2 * _cohort_hits(snapshot, contexts)
        assert set(taken.adopters if taken else ()) == _adopters(snapshot, contexts)


@pytest.mark.parametrize("doc", [KEYLESS_IN_COHORT, KEYLESS_IN_SET_SHAPE], ids=["rule", "set"])
def test_client__keyless_context_in_a_cohort__each_call_one_cohort_answer_no_adopter(
    doc: dict[str, Any],
) -> None:
    # Given a keyless context the engine puts in a cohort by its attributes
    context = {"seats": 0, "country": "NL"}
    assert evaluate(load_snapshot(doc), "f", context).matched_cohort is not None
    with _client(doc) as client:
        # When every entry point answers it once
        assert client.is_enabled("f", context) is True
        assert client.evaluate("f", context).enabled is True
        assert client.all_flags(context)["f"].enabled is True
        assert client.get_boolean("f", context, False) is True
        assert client.get_boolean_details("f", context, False).value is True
        taken = client._counters.take()["f"]
    # Then each is a cohort answer (the resolver's, past the check), with no user to note
    assert (taken.evaluations, taken.cohort, taken.adopters) == (5, 5, ())


def test_generated_case_failing__hypothesis_prints_doc_and_contexts() -> None:
    # schemathesis' plugin had blanked every failing example (tests/conftest.py says why)
    @settings(max_examples=1, deadline=None, database=None)
    @given(doc=ANY_SHAPE, contexts=st.lists(MAPPING_CONTEXTS, min_size=1, max_size=1))
    def fails(doc: dict[str, Any], contexts: list[Any]) -> None:
        raise AssertionError(len(contexts))

    with pytest.raises(AssertionError) as failure:
        fails()
    report = "\n".join(getattr(failure.value, "__notes__", ()))
    assert "doc={'spec_version': 2," in report and "contexts=[" in report, report


RULE = {"attribute": "country", "op": "in", "values": ["NL", "DE"]}


@pytest.mark.parametrize(
    ("flag", "cohorts", "attribute"),
    [
        (
            flag_doc("f", cohorts=["eu"], rollout_percent=50),
            [cohort_doc("eu", rules=[RULE])],
            "country",
        ),
        (
            flag_doc("f", cohorts=["vip"], rollout_percent=0.01),
            [cohort_doc("vip", members=["u1"])],
            "key",
        ),
        (flag_doc("f", rollout_percent=10), [], "key"),
        (flag_doc("f", stage="early_access", cohorts=["vip"]), [cohort_doc("vip")], None),
        (flag_doc("f", cohorts=["eu"], rollout_percent=0), [cohort_doc("eu", rules=[RULE])], None),
        (flag_doc("f", cohorts=["eu"], exclusions=["u1"]), [cohort_doc("eu", rules=[RULE])], None),
        (flag_doc("f", stage="released"), [], None),
        (flag_doc("f", killed=True, cohorts=["eu"]), [cohort_doc("eu", rules=[RULE])], None),
        (
            flag_doc("f", cohorts=["eu", "vip"]),
            [cohort_doc("eu", rules=[RULE]), cohort_doc("vip", members=["u1"])],
            None,
        ),
        (flag_doc("f", cohorts=["both"]), [cohort_doc("both", members=["u1"], rules=[RULE])], None),
    ],
)
def test_plan__shape__inline_only_a_set_test_with_a_rollout(
    flag: dict[str, Any], cohorts: list[dict[str, Any]], attribute: str | None
) -> None:
    # (a set test without rollout goes to the check: no cutoff test on every inline call)
    snapshot = load_snapshot(snapshot_doc([flag], cohorts))
    plan = compile_plan(snapshot, snapshot.index["f"], Tally(), Answers(1))
    assert (plan.kind, plan.attribute) == ((dict, attribute) if attribute else (None, ""))


@pytest.mark.parametrize(("stage", "percent"), [("early_access", 0), ("general", 5)])
def test_plan__thousand_member_cohort__no_copy_of_members(stage: str, percent: int) -> None:
    # Given one big member cohort: the plan and the check must reuse its set, not copy it
    members = [f"user-{i}" for i in range(1000)]
    doc = snapshot_doc(
        [flag_doc("f", stage=stage, rollout_percent=percent, cohorts=["big"])],
        [cohort_doc("big", members=members)],
    )
    snapshot = load_snapshot(doc)
    big = snapshot.cohorts["big"].members
    plan = compile_plan(snapshot, snapshot.index["f"], Tally(), Answers(1))
    assert plan.values is big if plan.kind is dict else plan.values == frozenset()
    cells = [cell.cell_contents for cell in plan.check.__closure__ or ()]  # type: ignore[attr-defined]
    assert any(cell is big for cell in cells)
    for user_key in ("user-999", "user-1000", "stranger"):
        context = {"key": user_key}
        assert plan.check(context, user_key) is evaluate(snapshot, "f", context).enabled
    assert plan.check({"key": "user-999"}, "user-999") is True


@pytest.mark.parametrize(("percent", "expected"), [(100, True), (0, False)])
def test_is_enabled__unhashable_attribute__not_in_cohort_rollout_decides(
    percent: int, expected: bool
) -> None:
    # Given the set shape, and a country that is a list (a type mismatch, not an error)
    with _client(eu_rollout_doc(rollout_percent=percent)) as client:
        for default in (True, False):
            assert (
                client.is_enabled("new-checkout", {"key": "u", "country": ["NL"]}, default)
                is expected
            )


def test_is_enabled__every_shape_and_failure__counted_once() -> None:
    # Given a set-shape flag and a released one, on a client that reports counts
    doc = eu_rollout_doc()
    doc["flags"]["old"] = flag_doc("old", stage="released")
    service = FakeService(doc)
    client = Client(
        "http://flags.test", "k", transport=service.transport, stream=False, metrics_interval=3600
    )
    assert client.wait_until_ready(5)
    contexts = [{"key": "u", "country": "NL"}, {"key": "u", "country": []}, {}, None]
    contexts.append(MappingProxyType({"key": "u"}))  # type: ignore[arg-type]
    # When each is evaluated once per flag, plus a flag that does not exist
    for flag_key in ("new-checkout", "old", "nope"):
        for context in contexts:
            client.is_enabled(flag_key, context)
    client.close()
    # Then
    counts = {e["flag"]: e["count"] for _, body in service.posts for e in body["evaluations"]}
    assert counts == {"new-checkout": 5, "old": 5}
