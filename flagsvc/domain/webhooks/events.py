"""The events a webhook may subscribe to, read from the audit events that cause them.

Every change already writes an audit event in its own transaction; a notification is
derived from that event in the same transaction (``services.webhooks.outbox``), so the
two can never disagree. Events that no change causes (a flag turning stale, a feature
becoming safe to promise) are found by the webhook worker, which writes them the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flagsvc.domain.actions import Action
from flagsvc.domain.stages import Stage


class EventType(StrEnum):
    """What a webhook can be told about (stored and sent as the value)."""

    EARLY_ACCESS_ENTERED = "flag.early_access_entered"
    SAFE_TO_PROMISE = "flag.safe_to_promise"
    READINESS_ITEM_DONE = "readiness.item_done"
    READY_TO_LAUNCH = "flag.ready_to_launch"
    LAUNCH_SCHEDULED = "flag.launch_scheduled"
    LAUNCHED = "flag.launched"
    LAUNCH_SKIPPED = "flag.launch_skipped"
    KILLED = "flag.killed"
    RELEASED = "flag.released"
    STALE = "flag.stale"


ALL_EVENTS: tuple[str, ...] = tuple(event.value for event in EventType)

_DIRECT: Mapping[str, EventType] = {
    Action.FLAG_READY: EventType.READY_TO_LAUNCH,
    Action.FLAG_LAUNCH_SCHEDULED: EventType.LAUNCH_SCHEDULED,
    Action.FLAG_LAUNCH_SKIPPED: EventType.LAUNCH_SKIPPED,
    Action.FLAG_KILLED: EventType.KILLED,
}
NOTIFYING_ACTIONS = frozenset({*_DIRECT, Action.FLAG_STAGE_CHANGED, Action.READINESS_ITEM_MARKED})
"""Audit actions that may cause a notification: every other action is passed over
without a database read, so writes nobody subscribes to cost nothing."""


def event_for(action: str, before: Any, after: Any) -> EventType | None:
    """The notification an audit event causes, or None.

    A stage move notifies when it *enters* early access, general rollout from below it
    (``launched``: by hand or by the scheduler, whose move is an ordinary stage move) or
    released; a ramp inside general, or a rollback into general, is not a launch.
    """
    direct = _DIRECT.get(action)
    if direct is not None:
        return direct
    if action == Action.READINESS_ITEM_MARKED:
        return EventType.READINESS_ITEM_DONE if _get(after, "done") is True else None
    if action == Action.FLAG_STAGE_CHANGED:
        return _stage_event(_get(before, "stage"), _get(after, "stage"))
    return None


def _stage_event(before: object, after: object) -> EventType | None:
    if before == after:
        return None
    if after == Stage.EARLY_ACCESS:
        return EventType.EARLY_ACCESS_ENTERED
    if after == Stage.RELEASED:
        return EventType.RELEASED
    if after == Stage.GENERAL and before in (Stage.OFF, Stage.EARLY_ACCESS, Stage.RETIRED):
        return EventType.LAUNCHED
    return None


def _get(fields: Any, name: str) -> object:
    return fields.get(name) if isinstance(fields, Mapping) else None


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one notification is about, as a webhook's filters see it."""

    event: str
    value_stream: str | None
    environment: str | None


@dataclass(frozen=True, slots=True)
class Filters:
    """A webhook's filters: the events it wants, and the value streams and environments
    it limits them to (an empty list: all of them)."""

    events: Sequence[str]
    value_streams: Sequence[str] = ()
    environments: Sequence[str] = ()

    def wants(self, wanted: Subscription) -> bool:
        """Whether a notification about ``wanted`` goes to this webhook."""
        return (
            wanted.event in self.events
            and (not self.value_streams or wanted.value_stream in self.value_streams)
            and (
                not self.environments
                or wanted.environment is None
                or wanted.environment in self.environments
            )
        )
