"""HeadTracker: what it serves without the database, and when it asks again."""

from __future__ import annotations

import pytest

from flagsvc.delivery.heads import HeadTracker


class Source:
    """A database head that counts its reads and can fail."""

    def __init__(self, head: int = 5) -> None:
        self.head = head
        self.reads = 0
        self.error: Exception | None = None

    def __call__(self) -> int:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return self.head


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def parts() -> tuple[HeadTracker, Source, Clock]:
    source, clock = Source(), Clock()
    return HeadTracker(source, max_age=2.0, clock=clock), source, clock


def test_current__first_call_reads_then_none_until_max_age(parts):
    tracker, source, clock = parts
    assert [tracker.current() for _ in range(50)] == [5] * 50
    assert source.reads == 1
    clock.now += 1.9
    source.head = 7
    assert tracker.current() == 5 and source.reads == 1  # trusted: a lost message waits
    clock.now += 0.2
    assert tracker.current() == 7 and source.reads == 2  # max_age bounds the staleness


def test_heard__own_commit_or_broker__served_at_once_and_never_backwards(parts):
    tracker, source, _clock = parts
    tracker.current()
    tracker.heard(9)
    assert tracker.current() == 9
    tracker.heard(8)  # a late message for an older change
    assert tracker.current() == 9 and source.reads == 1


def test_confirm__database_lower__believed_on_the_second_reading(parts):
    tracker, _source, clock = parts
    tracker.current()
    tracker.heard(40)  # a stray message, or a database reset since
    clock.now += 2.1
    assert tracker.current() == 40  # one reading may race a fresh commit
    clock.now += 2.1
    assert tracker.current() == 5


def test_current__source_fails__raises_and_asks_again_next_time(parts):
    tracker, source, _clock = parts
    source.error = ConnectionError("database down")
    with pytest.raises(ConnectionError):
        tracker.current()
    source.error = None
    assert tracker.current() == 5 and source.reads == 2


def test_known__while_another_caller_reads__the_known_head_not_a_second_read(parts):
    # Given a head confirmed once, then max_age passed (a read is due)
    tracker, source, clock = parts
    tracker.current()
    clock.now += 2.1
    assert tracker.known() is None  # the read is due: this caller takes the full path
    seen_during_read = []

    def slow_source() -> int:
        seen_during_read.append(tracker.known())  # every other SDK poll meanwhile
        return 6

    tracker.source = slow_source
    # When one caller reads the head
    assert tracker.current() == 6
    # Then the polls answered during its read were served the known head, not sent to
    # read it too; after the read the new head is confirmed
    assert seen_during_read == [5]
    assert tracker.known() == 6 and source.reads == 1


def test_known__nothing_known_yet__none_even_while_reading(parts):
    tracker, _source, _clock = parts
    seen = []

    def first_source() -> int:
        seen.append(tracker.known())
        return 3

    tracker.source = first_source
    assert tracker.current() == 3
    assert seen == [None]
