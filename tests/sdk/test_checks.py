"""The ``is_enabled`` fast path agrees with ``engine.evaluate`` on generated flags and contexts."""

from __future__ import annotations

from typing import Any

from flagsvc_sdk.checks import Counters
from flagsvc_sdk.checks import compile_check
from flagsvc_sdk.engine import evaluate
from flagsvc_sdk.engine import load_snapshot
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from .conftest import cohort_doc
from .conftest import flag_doc
from .conftest import snapshot_doc

USERS = [f"u{i}" for i in range(8)]
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
ATTRIBUTE_VALUES = st.one_of(
    SCALARS,
    st.none(),
    st.lists(STRINGS, max_size=2),
    st.dictionaries(st.just("a"), STRINGS, max_size=1),
)
CONTEXTS = st.one_of(
    st.fixed_dictionaries(
        {"key": st.sampled_from([*USERS, "", None, 5])},
        optional={"country": ATTRIBUTE_VALUES, "plan": ATTRIBUTE_VALUES, "seats": ATTRIBUTE_VALUES},
    ),
    st.sampled_from([None, "u1", ["u1"], {}, 3]),
)


@st.composite
def snapshots(draw: st.DrawFn) -> dict[str, Any]:
    cohorts = [
        cohort_doc(
            f"c{i}",
            members=draw(st.lists(st.sampled_from(USERS), max_size=3)),
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
    return snapshot_doc([flag], cohorts)


@settings(max_examples=600, deadline=None)
@given(doc=snapshots(), contexts=st.lists(CONTEXTS, min_size=1, max_size=6))
def test_check__generated_flags_and_contexts__agrees_with_engine(
    doc: dict[str, Any], contexts: list[Any]
) -> None:
    snapshot = load_snapshot(doc)
    check = compile_check(snapshot.index["f"], Counters().tick("f"))
    for context in contexts:
        result = evaluate(snapshot, "f", context)
        expected = None if result.error_code is not None else result.enabled
        assert check(context) is expected, (context, result)


def test_check__counts_every_call() -> None:
    snapshot = load_snapshot(snapshot_doc([flag_doc("f", stage="released")]))
    counters = Counters()
    check = compile_check(snapshot.index["f"], counters.tick("f"))
    for context in ({"key": "u"}, None, {"key": "v"}):
        check(context)
    assert counters.take() == {"f": 3}


def test_check__thousand_member_cohort__no_copy_of_members() -> None:
    # Given one big member cohort: the check must reuse its set, not copy it
    members = [f"user-{i}" for i in range(1000)]
    doc = snapshot_doc(
        [flag_doc("f", stage="early_access", cohorts=["big"])], [cohort_doc("big", members=members)]
    )
    snapshot = load_snapshot(doc)
    check = compile_check(snapshot.index["f"], Counters().tick("f"))
    cells = [cell.cell_contents for cell in check.__closure__ or ()]
    assert any(cell is snapshot.cohorts["big"].members for cell in cells)
    assert check({"key": "user-999"}) is True and check({"key": "user-1000"}) is False
