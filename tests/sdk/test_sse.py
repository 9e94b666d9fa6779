"""Server-Sent Events framing (``_sse``) and what the events mean (``_streaming``)."""

from __future__ import annotations

import itertools

import pytest
from flagsvc_sdk._sse import Event
from flagsvc_sdk._sse import events
from flagsvc_sdk._streaming import Signal
from flagsvc_sdk._streaming import Silence
from flagsvc_sdk._streaming import interpret
from hypothesis import given
from hypothesis import strategies as st

STREAM = (
    b"retry: 1000\n\n"
    b'event: hello\ndata: {"environment": "production", "version": 3, "keepalive": 15}\n\n'
    b": keep-alive\n\n"
    b"event: change\ndata: line one\ndata: line two\n\n"
)
EXPECTED = [
    Event("message", "", 1000),
    Event("hello", '{"environment": "production", "version": 3, "keepalive": 15}'),
    Event("change", "line one\nline two"),
]


@given(cuts=st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_events__any_chunking__same_events(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    assert list(events(chunks, lambda: None)) == EXPECTED


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_events__every_line_ending__same_events(newline: bytes) -> None:
    stream = STREAM.replace(b"\n", newline) + b"event: flush\ndata: x" + newline * 2
    assert list(events([stream], lambda: None))[:3] == EXPECTED


def test_events__keep_alive_comments__no_event_but_every_line_heard() -> None:
    heard: list[None] = []
    chunks = [b": keep-alive\n\n", b": keep-alive\n\n"]
    assert list(events(chunks, lambda: heard.append(None))) == []
    assert len(heard) == 4


@pytest.mark.parametrize(
    ("data", "version", "keepalive"),
    [
        ('{"version": 3, "keepalive": 15}', 3, 15.0),
        ('{"version": 3, "keepalive": 0.2}', 3, 0.2),
        ('{"version": 3}', 3, None),  # an older service: the default applies
        ('{"version": 3, "keepalive": 0}', 3, None),
        ('{"version": 3, "keepalive": "15"}', 3, None),
        ('{"version": 3, "keepalive": true}', 3, None),
        ("not json", None, None),
    ],
)
def test_interpret__hello__version_and_keepalive(
    data: str, version: int | None, keepalive: float | None
) -> None:
    assert interpret(Event("hello", data)) == Signal("hello", version, None, keepalive)


def test_silence__announced_interval__dead_after_three_delivering_for_one_and_a_half() -> None:
    assert (Silence(60).dead_after, Silence(60).delivering_for) == (180, 90)
