"""Timelines and flow figures from audit events: pure functions, hand-computed values."""

from __future__ import annotations

import re
from bisect import bisect_right
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from flagsvc.domain import flow
from flagsvc.domain.actions import Action
from flagsvc.services.flow import Bottleneck
from flagsvc.services.flow import Window
from flagsvc.services.flow import bottleneck
from flagsvc.services.flow import iso_weeks

DAY0 = datetime(2026, 10, 1, 9, tzinfo=UTC)
PROD = "production"


def day(n: float) -> datetime:
    return DAY0 + timedelta(days=n)


class Script:
    """Builds events in chain order, like the audit would hold them."""

    def __init__(self) -> None:
        self.events: list[flow.FlowEvent] = []

    def add(self, at: float, action: str, env: str | None = None, **fields) -> Script:
        event = flow.FlowEvent(len(self.events) + 1, day(at), action, "a", env, **fields)
        self.events.append(event)
        return self

    def stage(self, at: float, stage: str, percent: float = 0.0, env: str = PROD) -> Script:
        return self.add(at, Action.FLAG_STAGE_CHANGED, env, stage=stage, rollout_percent=percent)


def brief_example() -> Script:
    """Created day 0, early access day 2, ready day 9, general day 10, released day 14."""
    return (
        Script()
        .add(0, Action.FLAG_CREATED)
        .stage(2, "early_access")
        .add(9, Action.FLAG_READY)
        .stage(10, "general", 50)
        .stage(14, "released")
    )


def flow_of(script: Script, as_of: float = 20, gated: bool = True, env: str = PROD):
    scope = flow.FlowScope(env, gated, day(as_of))
    return flow.flag_flow("a", "feature", script.events, scope)


def test_flag_flow__brief_example__hand_computed_figures():
    item = flow_of(brief_example())
    assert item.released == day(14)
    assert flow.days(item.flow_time) == 14
    assert flow.days(item.readiness_wait) == 7
    assert flow.days(item.active) == 7 and item.efficiency == 0.5
    assert {stage: flow.days(s) for stage, s in item.dwell.items()} == {
        "off": 2, "early_access": 8, "general": 4
    }  # fmt: skip
    assert not item.waiting_for_readiness_now


def test_flag_flow__readiness_lost_and_regained__both_waits_count():
    script = (
        Script().add(0, Action.FLAG_CREATED).stage(2, "early_access").add(3, Action.FLAG_READY)
        .add(5, Action.FLAG_READINESS_LOST).add(8, Action.FLAG_READY).stage(9, "general", 100)
        .stage(10, "released")
    )  # fmt: skip
    item = flow_of(script)
    assert flow.days(item.readiness_wait) == 1 + 3  # 2→3 and 5→8
    assert flow.days(item.active) == 10 - 4


def test_flag_flow__killed_while_waiting_for_readiness__counted_once_as_readiness_wait():
    script = (
        Script().add(0, Action.FLAG_CREATED).stage(1, "early_access").add(2, Action.FLAG_KILLED, PROD)
        .add(4, Action.FLAG_RESUMED, PROD).add(5, Action.FLAG_READY).add(6, Action.FLAG_KILLED, PROD)
        .add(7, Action.FLAG_RESUMED, PROD).stage(8, "released")
    )  # fmt: skip
    item = flow_of(script)
    assert flow.days(item.readiness_wait) == 4  # 1→5, killed or not
    assert flow.days(item.blocked) == 1  # 6→7
    assert flow.days(item.active) == 8 - 5


def test_flag_flow__ungated_environment__no_readiness_wait():
    item = flow_of(brief_example(), gated=False)
    assert item.readiness_wait == 0 and item.efficiency == 1.0


def test_flag_flow__other_environment_events__ignored():
    script = (
        brief_example().stage(1, "released", env="staging").add(3, Action.FLAG_KILLED, "staging")
    )
    item = flow_of(script)
    assert flow.days(item.flow_time) == 14 and item.blocked == 0


def test_flag_flow__in_flight__measured_up_to_as_of():
    script = Script().add(0, Action.FLAG_CREATED).stage(4, "early_access")
    item = flow_of(script, as_of=20)
    assert item.released is None and flow.days(item.flow_time) == 20
    assert flow.days(item.readiness_wait) == 16 and item.waiting_for_readiness_now
    assert item.stage_at(day(3)) == "off" and item.stage_at(day(4)) == "early_access"


def test_flag_flow__rolled_back_after_release__release_is_the_first_entry():
    item = flow_of(brief_example().stage(15, "general", 50).stage(17, "released"))
    assert item.released == day(14) and flow.days(item.flow_time) == 14


def test_flag_flow__created_after_as_of_or_never__none():
    assert flow_of(brief_example(), as_of=-1) is None
    assert flow_of(Script().stage(2, "early_access")) is None  # no flag.created event


def test_flag_flow__same_instant_moves__zero_length_periods_harmless():
    script = Script().add(0, Action.FLAG_CREATED).add(0, Action.FLAG_READY).stage(0, "early_access")
    item = flow_of(script.stage(0, "general", 100).stage(3, "released"))
    assert flow.days(item.flow_time) == 3 and item.dwell["general"] == 3 * 86_400
    assert item.readiness_wait == 0


def test_stage_periods__each_move_closes_the_last_period():
    periods = flow.stage_periods(brief_example().events, PROD, day(0))
    assert [(p.stage, p.rollout_percent, p.start, p.end) for p in periods] == [
        ("off", 0.0, day(0), day(2)),
        ("early_access", 0.0, day(2), day(10)),
        ("general", 50, day(10), day(14)),
        ("released", 0.0, day(14), None),
    ]


def test_intervals__ready_and_kill_switch__open_while_they_last():
    script = (
        Script()
        .add(1, Action.FLAG_READY)
        .add(3, Action.FLAG_READINESS_LOST)
        .add(5, Action.FLAG_READY)
    )
    assert flow.ready_intervals(script.events) == (
        flow.Interval(day(1), day(3)), flow.Interval(day(5), None)
    )  # fmt: skip
    kills = (
        Script()
        .add(1, Action.FLAG_KILLED, PROD)
        .add(2, Action.FLAG_KILLED, "staging")
        .add(4, Action.FLAG_RESUMED, PROD)
    )
    assert flow.killed_intervals(kills.events, PROD) == (flow.Interval(day(1), day(4)),)
    assert flow.killed_intervals(kills.events, "staging") == (flow.Interval(day(2), None),)


def test_environment_timeline__milestones_markers_and_ready_times():
    script = (
        brief_example()
        .add(11, Action.FLAG_KILLED, PROD, actor="dana")
        .add(12, Action.FLAG_RESUMED, PROD)
    )
    script.add(10, Action.FLAG_LAUNCH_RAN, PROD, actor="scheduler", planned_at=day(9.9))
    timeline = flow.environment_timeline(script.events, PROD, day(0))
    assert (timeline.first_early_access, timeline.general_started) == (day(2), day(10))
    assert (timeline.released, timeline.retired) == (day(14), None)
    assert (timeline.ready_first, timeline.ready_latest) == (day(9), day(9))
    assert [(m.action, m.at, m.actor) for m in timeline.kill_switch] == [
        ("killed", day(11), "dana"), ("resumed", day(12), "")
    ]  # fmt: skip
    assert timeline.launches == (flow.Marker("launch_ran", day(10), "scheduler", day(9.9)),)


@pytest.mark.parametrize(
    ("values", "share", "expected"),
    [([], 0.5, None), ([5], 0.85, 5), ([10, 14], 0.5, 12), ([10, 14], 0.85, 13.4),
     ([2, 5, 8, 16], 0.5, 6.5), ([1, 2, 3, 4, 5], 0.85, 4.4)],
)  # fmt: skip
def test_percentile__linear_between_closest_ranks(values, share, expected):
    result = flow.percentile(values, share)
    assert result == (None if expected is None else pytest.approx(expected))


def test_bottleneck__longest_median__ties_go_to_the_earlier_stage():
    assert bottleneck({"off": 2.0, "early_access": 6.5, "general": 4.0}) == Bottleneck(
        "early_access", 6.5
    )
    assert bottleneck({"off": 3.0, "early_access": 3.0, "general": None}) == Bottleneck("off", 3.0)
    assert bottleneck({"off": None, "early_access": None, "general": None}) is None


def test_iso_weeks__window_spans_partial_weeks__labels_and_bounds():
    weeks = iso_weeks(Window(day(0), None, day(20)))  # Thursday W40 to Wednesday W43
    assert [label for label, _, _ in weeks] == ["2026-W40", "2026-W41", "2026-W42", "2026-W43"]
    assert weeks[0][1] == datetime(2026, 9, 28, tzinfo=UTC)
    assert weeks[-1][2] == datetime(2026, 10, 26, tzinfo=UTC)


def test_flow_index__covers_exactly_the_flow_actions():
    # the partial index's predicate must list what the reports read, or PostgreSQL
    # cannot use it for them
    from flagsvc.storage.models import FLOW_ACTIONS_SQL

    assert set(re.findall(r"'([^']+)'", FLOW_ACTIONS_SQL)) == set(flow.FLOW_ACTIONS)


# --- one pass for many moments ------------------------------------------------------

_ACTIONS = st.sampled_from([
    Action.FLAG_STAGE_CHANGED, Action.FLAG_STAGE_CHANGED, Action.FLAG_STAGE_CHANGED,
    Action.FLAG_KILLED, Action.FLAG_RESUMED, Action.FLAG_READY, Action.FLAG_READINESS_LOST,
    Action.FLAG_CREATED,
])  # fmt: skip
_STAGES = st.sampled_from(["off", "early_access", "general", "released", "retired", None])


_SPAN = 40 * 86_400 * 10**6  # forty days, in microseconds


def _when(micros: int) -> datetime:
    return DAY0 + timedelta(microseconds=micros)


@st.composite
def _histories(draw, ordered: bool):
    """A flag's events (created usually first, not always; times in order or not)."""
    count = draw(st.integers(0, 14))
    times = draw(st.lists(st.integers(0, _SPAN), min_size=count, max_size=count))
    if ordered:
        times.sort()
    events = []
    if draw(st.booleans()) or not count:
        events.append((0 if ordered else draw(st.integers(0, _SPAN)), Action.FLAG_CREATED, None))
    for micros in times:
        events.append(
            (micros, draw(_ACTIONS), draw(st.sampled_from([PROD, PROD, "staging", None])))
        )
    if ordered:
        events.sort(key=lambda e: e[0])
    return [
        flow.FlowEvent(
            n, _when(micros), action, "a", env,
            draw(_STAGES) if action == Action.FLAG_STAGE_CHANGED else None,
            draw(st.sampled_from([0.0, 25.0, 100.0, None])),
        )
        for n, (micros, action, env) in enumerate(events, start=1)
    ]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(ordered=st.booleans(), data=st.data(), gated=st.booleans())
def test_flag_flows__each_moment__same_as_flag_flow_on_the_events_up_to_it(ordered, data, gated):
    events = data.draw(_histories(ordered))
    times = [e.at for e in events]
    picked = st.sampled_from(times) if times else st.just(DAY0)
    at = sorted(set(data.draw(
        st.lists(st.one_of(picked, st.integers(-_SPAN // 8, _SPAN).map(_when)), min_size=1, max_size=14)
    )))  # fmt: skip
    found = flow.flag_flows("a", "feature", events, flow.FlowScope(PROD, gated, at[-1]), at)
    expected = [
        flow.flag_flow(
            "a", "feature", events[: bisect_right(times, m)], flow.FlowScope(PROD, gated, m)
        )
        for m in at
    ]
    assert found == expected


@pytest.mark.parametrize("gated", [True, False])
def test_flag_flows__moments_on_and_between_events__same_as_flag_flow(gated):
    script = (
        Script().add(0, Action.FLAG_CREATED).stage(2, "early_access").add(3, Action.FLAG_KILLED)
        .add(4, Action.FLAG_RESUMED).add(5, Action.FLAG_READY).add(6, Action.FLAG_READINESS_LOST)
        .stage(7, "general", 50).add(8, Action.FLAG_READY).stage(9, "released")
        .stage(10, "early_access")
    )  # fmt: skip
    times = [e.at for e in script.events]
    at = sorted({*times, *(day(n + 0.5) for n in range(-1, 12))})
    found = flow.flag_flows("a", "feature", script.events, flow.FlowScope(PROD, gated, at[-1]), at)
    assert found == [
        flow.flag_flow(
            "a", "feature", script.events[: bisect_right(times, m)], flow.FlowScope(PROD, gated, m)
        )
        for m in at
    ]
