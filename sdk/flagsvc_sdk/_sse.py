"""Server-Sent Events framing (the WHATWG ``text/event-stream`` format), line by line.

Written here rather than taken from a library because the updater must see *every*
line, keep-alive comments included: they are how it knows a silent stream is still
alive (``on_line``), and SSE libraries swallow them. The format is small: lines end in
CRLF, LF or CR; a blank line dispatches the event; ``field: value`` lines set ``event``,
``data`` (joined by newlines), ``id`` and ``retry``; lines starting with ``:`` are
comments.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Event", "events"]


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched event; ``event`` is ``message`` when the stream named none."""

    event: str
    data: str
    retry: int | None = None


def events(chunks: Iterable[bytes], on_line: Callable[[], None]) -> Iterator[Event]:
    """Decode a byte stream into events; ``on_line`` is called for every line received."""
    buffer = b""
    name, data, retry = "", list[str](), None
    for chunk in chunks:
        lines = (buffer + chunk).splitlines(keepends=True)
        buffer = lines.pop() if lines and _incomplete(lines[-1]) else b""
        for raw in lines:
            on_line()
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if not line:
                if data or name or retry is not None:
                    yield Event(name or "message", "\n".join(data), retry)
                name, data, retry = "", list[str](), None
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            elif field == "retry" and value.isdigit():
                retry = int(value)


def _incomplete(line: bytes) -> bool:
    """No line end yet, or a CR at the very end, which may be half of a CRLF."""
    return not line.endswith((b"\n", b"\r")) or line.endswith(b"\r")
