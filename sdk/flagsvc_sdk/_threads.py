"""The client's threads take none of the signals sent to the process.

A signal sent to a process (``kill``, ``killpg``, systemd stopping a unit, a uWSGI
master stopping its workers) is handled by whichever of its threads does not block it,
and the kernel may pick one of ours. Python's own handlers always run on the main
thread, wherever the signal landed; but a server that handles signals in C runs its
handler on the thread it landed on. A uWSGI worker told to stop calls ``exit()`` there,
which finalises Python on our thread, and finalising from any thread but the main one
waits for the main thread to end, while the main thread waits for requests: the worker
hangs until its master kills it (``worker-reload-mercy``, 60 s by default). Seen:
``end_me`` -> ``Py_FinalizeEx`` -> ``threading._shutdown`` on ``flagsvc-updater``,
waiting on the main thread's lock. uWSGI blocks every signal on the threads it starts
for this reason; ours do the same, so the process's signals land where the server
expects them.

Under gevent a "thread" is a greenlet on the thread that started it: its signal mask is
that thread's, the app's, and stays untouched.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from contextlib import suppress

__all__ = ["BackgroundThread", "blocked_signals"]

_RAISED_BY_FAULTS = frozenset(
    {"SIGABRT", "SIGBUS", "SIGFPE", "SIGILL", "SIGSEGV", "SIGSYS", "SIGTRAP"}
)
"""Signals a fault sends to the faulting thread itself: never blocked (a blocked one
would kill the process without a handler running, ``faulthandler``'s included)."""
_NEVER_BLOCKED = _RAISED_BY_FAULTS | {"SIGKILL", "SIGSTOP"}
"""Left out of the mask: the fault signals, and the two no thread can block."""


def blocked_signals() -> set[int]:
    """What the client's threads block: every signal but those raised by faults."""
    return {
        number
        for number in signal.valid_signals()
        if getattr(number, "name", "") not in _NEVER_BLOCKED
    }


def _block_process_signals() -> None:
    """Block :func:`blocked_signals` on the calling thread (a no-op on Windows)."""
    if sys.platform == "win32":  # no signal masks: a signal is not delivered to a thread
        return
    with suppress(OSError, ValueError):  # never let this stop the thread from working
        signal.pthread_sigmask(signal.SIG_BLOCK, blocked_signals())


class BackgroundThread(threading.Thread):
    """A daemon thread of the client: blocks the process's signals before ``target``."""

    def __init__(self, target: Callable[[], object], name: str) -> None:
        super().__init__(target=target, name=name, daemon=True)
        self._starter: int | None = None

    def start(self) -> None:
        self._starter = threading.get_native_id()
        super().start()

    def run(self) -> None:
        if threading.get_native_id() != self._starter:  # an OS thread, not a greenlet
            _block_process_signals()
        super().run()
