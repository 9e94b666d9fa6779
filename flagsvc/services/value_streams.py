"""Value streams (Flow Framework): teams of teams delivering to customers.

Objectives belong to a value stream, and a flag to its objective's (through the key
result it serves): one source, so a flag's stream can never disagree with the work it
serves. Flow metrics, the bottleneck and measured key results can be read per stream,
and :func:`compare` sets the streams side by side so a leader sees which stream, and
which step, holds delivery back.

Steps of a flag's flow (days summed per flag, up to release or the window's end):

- ``building``: dark (``off``) after creation;
- ``waiting_for_readiness``: in early access in a gated environment, readiness incomplete;
- ``early_access``: in early access otherwise (with early adopters, ready);
- ``ramp``: general rollout below release.

A stream's *bottleneck step* is the one with the longest median over its flags in
scope (flags that never spent time in a step are left out of its median).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain import flow as flow_rules
from flagsvc.domain.actions import Action
from flagsvc.domain.errors import DuplicateKeyError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.stages import Stage
from flagsvc.services import audit
from flagsvc.services import environments
from flagsvc.services import flow
from flagsvc.services import timeline
from flagsvc.services.context import Change
from flagsvc.storage.models import Flag
from flagsvc.storage.models import KeyResult
from flagsvc.storage.models import Objective
from flagsvc.storage.models import ValueStream

STEPS = ("building", "waiting_for_readiness", "early_access", "ramp")
MAX_STREAMS = 1000


def list_streams(session: Session) -> Sequence[ValueStream]:
    """Every value stream, by key."""
    return session.scalars(select(ValueStream).order_by(ValueStream.key).limit(MAX_STREAMS)).all()


def get_stream(session: Session, key: str) -> ValueStream:
    """The value stream ``key``.

    :raise NotFoundError: there is none.
    """
    found = session.scalar(select(ValueStream).where(ValueStream.key == key))
    if found is None:
        raise NotFoundError("value stream", key)
    return found


def create_stream(session: Session, change: Change, fields: Mapping[str, Any]) -> ValueStream:
    """Create a value stream (key, name, description), audited.

    :raise DuplicateKeyError: the key is taken.
    """
    if session.scalar(select(ValueStream.id).where(ValueStream.key == fields["key"])):
        raise DuplicateKeyError("value stream", fields["key"])
    stream = ValueStream(
        key=fields["key"],
        name=fields["name"],
        description=fields.get("description", ""),
        created_at=change.at,
    )
    session.add(stream)
    session.flush()
    after = {"key": stream.key, "name": stream.name, "description": stream.description}
    subject = audit.Subject("value_stream", stream.key)
    audit.record(session, change, Action.VALUE_STREAM_CREATED, subject, None, after)
    return stream


@dataclass(frozen=True, slots=True)
class StreamFlow:
    """One stream's flow in the window: metrics, steps and what waits where now."""

    key: str | None  # None: flags of objectives without a stream
    name: str
    metrics: flow.FlowMetrics
    steps: dict[str, dict[str, Any]]
    bottleneck: dict[str, Any] | None
    in_flight_now: dict[str, int]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Every stream side by side; ``holds_back``: the stream and step with the longest
    median (None without data)."""

    environment: str
    window: flow.Window
    streams: list[StreamFlow]
    holds_back: dict[str, Any] | None


def compare(session: Session, query: flow.FlowQuery, now: datetime) -> Comparison:
    """Flow per value stream in one environment and window.

    :raise NotFoundError: the environment does not exist.
    :raise InvalidFieldError: the period is inverted or too long.
    """
    span = flow.window(query, now)
    env = environments.get_environment(session, query.environment)
    candidates = timeline.active_flag_keys(env.key, span.since, flow.event_bound(span))
    flows = flow.load_flows(session, env, select(Flag.key).where(Flag.key.in_(candidates)), span)
    owner = {
        key: stream
        for key, stream in session.execute(
            select(Flag.key, Objective.value_stream_id)
            .join(KeyResult, KeyResult.id == Flag.key_result_id)
            .join(Objective, Objective.id == KeyResult.objective_id)
        )
    }  # every flag's: one join, cheaper than running the candidate query again
    grouped: dict[int | None, list[flow_rules.FlagFlow]] = {}
    for item in flows:
        grouped.setdefault(owner.get(item.flag_key), []).append(item)
    streams = [
        _stream_flow(s.key, s.name, grouped.get(s.id, []), span) for s in list_streams(session)
    ]
    if grouped.get(None):
        streams.append(_stream_flow(None, "No value stream", grouped[None], span))
    known = [(s.bottleneck["median_days"], s) for s in streams if s.bottleneck]
    holds_back = None
    if known:
        _, worst = max(known, key=lambda pair: pair[0])
        holds_back = {"value_stream": worst.key, **(worst.bottleneck or {})}
    return Comparison(env.key, span, streams, holds_back)


def _stream_flow(
    key: str | None, name: str, flows: Sequence[flow_rules.FlagFlow], span: flow.Window
) -> StreamFlow:
    items = flow.in_scope(flows, span)
    per_step = {step: [flow_rules.days(_step_seconds(i, step)) for i in items] for step in STEPS}
    steps = {
        step: {
            "median_days": _rounded(flow_rules.percentile([d for d in days if d > 0], 0.5)),
            "total_days": round(sum(days), 4),
        }
        for step, days in per_step.items()
    }
    known = [(s["median_days"], step) for step, s in steps.items() if s["median_days"] is not None]
    bottleneck = None
    if known:
        days, step = max(known, key=lambda pair: (pair[0], -STEPS.index(pair[1])))
        bottleneck = {"step": step, "median_days": days}
    return StreamFlow(
        key, name, flow.summarize(flows, span, items), steps, bottleneck, _in_flight(items, span)
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _step_seconds(item: flow_rules.FlagFlow, step: str) -> float:
    if step == "building":
        return item.dwell[Stage.OFF]
    if step == "waiting_for_readiness":
        return item.readiness_wait
    if step == "early_access":
        return max(item.dwell[Stage.EARLY_ACCESS] - item.readiness_wait, 0.0)
    return item.dwell[Stage.GENERAL]


def _in_flight(items: Sequence[flow_rules.FlagFlow], span: flow.Window) -> dict[str, int]:
    """Flags in flight at the window's end, by the step they are in."""
    counts = dict.fromkeys(("waiting_for_readiness", "early_access", "ramp"), 0)
    for item in items:
        if item.released is not None:
            continue
        stage = item.stage_at(span.as_of)
        if stage == Stage.GENERAL:
            counts["ramp"] += 1
        elif stage == Stage.EARLY_ACCESS:
            counts[
                "waiting_for_readiness" if item.waiting_for_readiness_now else "early_access"
            ] += 1
    return counts
