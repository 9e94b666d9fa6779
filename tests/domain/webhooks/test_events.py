import pytest

from flagsvc.domain.actions import Action
from flagsvc.domain.webhooks.events import EventType
from flagsvc.domain.webhooks.events import Filters
from flagsvc.domain.webhooks.events import Subscription
from flagsvc.domain.webhooks.events import event_for


def _moved(before, after):
    return event_for(Action.FLAG_STAGE_CHANGED, {"stage": before}, {"stage": after})


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("off", "early_access", EventType.EARLY_ACCESS_ENTERED),
        ("general", "early_access", EventType.EARLY_ACCESS_ENTERED),
        ("early_access", "general", EventType.LAUNCHED),
        ("off", "general", EventType.LAUNCHED),
        ("general", "released", EventType.RELEASED),
        ("general", "general", None),  # a ramp is not a launch
        ("released", "general", None),  # a rollback is not a launch
        ("early_access", "off", None),
    ],
)
def test_event_for__stage_moves(before, after, expected):
    assert _moved(before, after) == expected


def test_event_for__readiness_item__only_when_done():
    assert event_for(Action.READINESS_ITEM_MARKED, {"done": False}, {"done": True}) == (
        EventType.READINESS_ITEM_DONE
    )
    assert event_for(Action.READINESS_ITEM_MARKED, {"done": True}, {"done": False}) is None


def test_event_for__direct_actions_and_the_rest():
    assert event_for(Action.FLAG_KILLED, {}, {}) == EventType.KILLED
    assert event_for(Action.FLAG_READY, None, {}) == EventType.READY_TO_LAUNCH
    assert event_for(Action.FLAG_LAUNCH_SKIPPED, {}, {}) == EventType.LAUNCH_SKIPPED
    assert event_for(Action.FLAG_LAUNCH_SCHEDULED, {}, {}) == EventType.LAUNCH_SCHEDULED
    assert event_for(Action.FLAG_RESUMED, {}, {}) is None
    assert event_for(Action.TOKEN_CREATED, None, {}) is None


def test_filters__empty_lists_want_everything_else_only_what_they_name():
    wanted = Subscription("flag.killed", "growth", "production")
    assert Filters(["flag.killed"]).wants(wanted)
    assert not Filters(["flag.launched"]).wants(wanted)
    assert Filters(["flag.killed"], ["growth"], ["production"]).wants(wanted)
    assert not Filters(["flag.killed"], ["payments"]).wants(wanted)
    assert not Filters(["flag.killed"], [], ["staging"]).wants(wanted)
    assert not Filters(["flag.killed"], ["growth"]).wants(Subscription("flag.killed", None, None))
