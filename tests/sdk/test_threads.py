"""The client's threads block the signals sent to the process (``_threads.py``).

Otherwise the kernel may hand a ``kill`` meant for the process to one of them, and a
server that handles it in C runs its exit there: a uWSGI worker then finalises Python
on our thread and hangs waiting for its own main thread (the live check is in
``test_fork.py``). Read from ``/proc`` (Linux: the masks of other threads cannot be
asked from Python).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from flagsvc_sdk import Client
from flagsvc_sdk._threads import BackgroundThread

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

SENT_TO_PROCESSES = {
    signal.SIGTERM,  # kill, systemd, docker stop
    signal.SIGINT,  # a uWSGI master stopping its workers
    signal.SIGHUP,  # uWSGI's graceful reload
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCHLD,
    signal.SIGALRM,
    signal.SIGPIPE,
}
RAISED_BY_FAULTS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT}


def blocked_by(thread: threading.Thread) -> set[int]:
    """The signals ``thread`` blocks, from its ``SigBlk`` line in ``/proc``."""
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    mask = int(next(line for line in status.splitlines() if line.startswith("SigBlk:"))[7:], 16)
    return {number for number in range(1, 65) if mask >> (number - 1) & 1}


def test_client_threads__running__block_the_process_signals_and_not_faults(
    make_client: Callable[..., Client],
) -> None:
    main_mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    before = set(threading.enumerate())  # other tests' threads (the service's too) aside
    client = make_client(send_metrics=True, metrics_interval=60)
    assert client.wait_until_ready(5)
    threads = [t for t in set(threading.enumerate()) - before if t.name.startswith("flagsvc")]
    assert {t.name for t in threads} >= {"flagsvc-updater", "flagsvc-stream", "flagsvc-metrics"}
    for thread in threads:
        blocked = blocked_by(thread)
        assert blocked >= SENT_TO_PROCESSES, (thread.name, blocked)
        assert not blocked & RAISED_BY_FAULTS, (thread.name, blocked)
    # And the caller's thread keeps the mask it had
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == main_mask


def test_background_thread__run_on_the_starting_thread__mask_untouched() -> None:
    # (what a greenlet under gevent is: the app's thread, whose signals stay the app's)
    thread = BackgroundThread(lambda: None, "flagsvc-test")
    thread._starter = threading.get_native_id()
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    thread.run()
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
