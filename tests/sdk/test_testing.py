"""The in-memory client product teams use in their tests: same API, no network."""

from __future__ import annotations

import inspect
import threading
from typing import Any

import pytest
from flagsvc_sdk import Change
from flagsvc_sdk import Client
from flagsvc_sdk import ErrorCode
from flagsvc_sdk import Reason
from flagsvc_sdk import Stats
from flagsvc_sdk import Status
from flagsvc_sdk import StatusChange
from flagsvc_sdk.testing import InMemoryClient


def test_in_memory__public_methods__same_as_client() -> None:
    def public(cls: type) -> set[str]:
        return {name for name, _ in inspect.getmembers(cls) if not name.startswith("_")}

    assert public(Client) <= public(InMemoryClient)
    assert InMemoryClient().stats == Stats()  # all zeros: the double fetches nothing


def test_in_memory__set_flag__on_for_everyone() -> None:
    flags = InMemoryClient({"a": True, "b": False})
    assert flags.is_enabled("a", {"key": "u"}) is True
    assert flags.is_enabled("b", {"key": "u"}, default=True) is False
    assert flags.evaluate("a", {"key": "u"}).reason == Reason.STATIC
    assert flags.evaluate("b", {"key": "u"}).reason == Reason.DISABLED


def test_in_memory__payload__value_when_on_default_when_off() -> None:
    flags = InMemoryClient()
    flags.set_flag("banner", True, payload={"color": "blue"})
    assert flags.evaluate("banner", {"key": "u"}, "x").value == {"color": "blue"}
    flags.set_flag("banner", False, payload={"color": "blue"})
    assert flags.evaluate("banner", {"key": "u"}, "x").value == "x"


def test_in_memory__set_user__overrides_for_that_user_only() -> None:
    flags = InMemoryClient({"new-checkout": True})
    flags.set_user("new-checkout", "user-7", False)
    assert flags.is_enabled("new-checkout", {"key": "user-7"}) is False
    assert flags.is_enabled("new-checkout", {"key": "user-8"}) is True
    assert flags.evaluate("new-checkout", {"key": "user-7"}).reason == Reason.TARGETING_MATCH


def test_in_memory__set_user_on_unknown_flag__off_for_others() -> None:
    flags = InMemoryClient()
    flags.set_user("beta", "user-1", True, payload="v2")
    assert flags.evaluate("beta", {"key": "user-1"}).value == "v2"
    assert flags.evaluate("beta", {"key": "user-1"}).matched_cohort == "testing"
    assert flags.is_enabled("beta", {"key": "user-2"}) is False


@pytest.mark.parametrize("context", [None, {"key": ""}, "u", {"key": 3.0}, {"key": "\udcff"}])
def test_in_memory__invalid_context__default_invalid_context(context: Any) -> None:
    flags = InMemoryClient({"a": True})
    assert flags.is_enabled("a", context, default=True) is True
    assert flags.evaluate("a", context).error_code == ErrorCode.INVALID_CONTEXT


def test_in_memory__integer_key__the_user_of_its_digits() -> None:
    flags = InMemoryClient()
    flags.set_user("beta", "42", True)
    assert flags.is_enabled("beta", {"key": 42}) is True
    assert flags.enroll("early", {"key": 7}) is True
    assert flags.cohorts["early"] == {"7"}


@pytest.mark.parametrize("flag_key", ["missing", None, ["a"]])
def test_in_memory__unknown_or_removed_flag__default(flag_key: Any) -> None:
    flags = InMemoryClient({"a": True})
    flags.remove_flag("a")
    assert flags.is_enabled(flag_key, {"key": "u"}, default=True) is True
    assert flags.evaluate("a", {"key": "u"}, "d").error_code == ErrorCode.FLAG_NOT_FOUND


def test_in_memory__all_flags__every_flag() -> None:
    flags = InMemoryClient({"a": True, "b": False})
    assert {k: e.enabled for k, e in flags.all_flags({"key": "u"}).items()} == {
        "a": True,
        "b": False,
    }


def test_in_memory__enroll_and_leave__recorded() -> None:
    with InMemoryClient() as flags:
        assert flags.enroll("beta", {"key": "u1"}) and flags.enroll("beta", {"key": "u2"})
        assert flags.leave("beta", {"key": "u1"})
        assert flags.cohorts == {"beta": {"u2"}}
        assert flags.enroll("beta", None) is False
        assert flags.wait_until_ready(0) is True
    assert flags.enroll("beta", {"key": "u3"}) is False


def test_in_memory__listeners__told_of_each_change() -> None:
    flags = InMemoryClient()
    changes: list[Change] = []
    flags.add_change_listener(changes.append)
    flags.set_flag("a", True)
    flags.remove_change_listener(changes.append)
    flags.set_flag("b", True)
    assert changes == [Change(1, 0, ("a",), "testing")]
    assert flags.version == 2


def test_in_memory__threads__setters_and_readers_never_raise() -> None:
    flags = InMemoryClient({"a": True})
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            flags.all_flags({"key": "u"})
            flags.is_enabled("a", {"key": "u"})

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(2000):
        flags.set_user("a", f"u{i}", i % 2 == 0)
        flags.set_flag(f"f{i % 10}", True)
    stop.set()
    reader.join()


def test_in_memory__listener_raises__logged_and_the_others_still_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flags = InMemoryClient()
    told: list[Change] = []

    def broken(change: Change) -> None:
        raise RuntimeError("listener bug")

    flags.add_change_listener(broken)
    flags.add_change_listener(told.append)
    flags.set_flag("a", True)
    assert [change.flags_changed for change in told] == [("a",)]
    assert "a change listener failed" in caplog.text


def test_in_memory__keyless_context__answered_as_for_anyone() -> None:
    flags = InMemoryClient({"a": True})
    assert flags.evaluate("a", {}).value is True and flags.is_enabled("a", {"country": "NL"})


def test_in_memory__set_value__typed_getters_and_type_mismatch() -> None:
    flags = InMemoryClient()
    flags.set_value("layout", "v2", variation="new")
    details = flags.get_string_details("layout", {"key": "u"}, "v1")
    assert (details.value, details.variation, details.reason) == ("v2", "new", Reason.STATIC)
    assert flags.get_integer("layout", {"key": "u"}, 3) == 3
    assert flags.get_integer_details("layout", {"key": "u"}, 3).error_code == "TYPE_MISMATCH"
    flags.set_value("limit", 50)
    flags.set_value("ratio", 0.5)
    flags.set_value("config", {"steps": 1})
    assert flags.get_integer("limit", {}, 0) == 50 and flags.get_float("ratio", {}, 0.0) == 0.5
    assert flags.get_object("config", {}, {}) == {"steps": 1}
    assert flags.get_boolean("missing", {}, True) is True


def test_in_memory__set_status__listeners_told_a_raising_one_logged_as_by_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flags = InMemoryClient()
    told: list[StatusChange] = []

    def broken(change: StatusChange) -> None:
        raise RuntimeError("status listener bug")

    flags.add_status_listener(broken)
    flags.add_status_listener(told.append)
    flags.set_status(Status.STALE, "outage drill")
    flags.set_status(Status.STALE)  # no move: nobody told
    assert flags.status is Status.STALE
    assert told == [StatusChange(Status.STALE, Status.READY, "outage drill")]
    assert "a status listener failed" in caplog.text
    flags.remove_status_listener(told.append)
    flags.set_status(Status.READY)
    assert len(told) == 1
