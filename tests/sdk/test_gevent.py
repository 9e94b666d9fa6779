"""``Client`` under gevent, against a real service: what waits blocks one greenlet only.

A gevent app (the service's own default worker class, and a common one for Flask and
Django) monkey-patches sockets, threads and events; the client must then wait
cooperatively. The program runs in a child interpreter that patches before importing
anything, as gevent requires, and reports how many times a ticking greenlet ran while
another greenlet waited on the frozen service (SIGSTOP: connections are accepted,
nothing is answered).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from .conftest import LIVE_FLAG as FLAG
from .conftest import Live

PROGRAM = textwrap.dedent(
    """
    from gevent import monkey

    monkey.patch_all()

    import json
    import os
    import signal
    import sys
    import time

    import gevent
    from flagsvc_sdk import Client

    url, key, flag, service_pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


    def ticking_while(work):
        ticks = 0
        done = gevent.spawn(work)
        while not done.ready():
            gevent.sleep(0.01)
            ticks += 1
        return done.value, ticks


    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    flags = Client(url, key, timeout=1.5, poll_interval=0.5)
    report = {"ready": flags.wait_until_ready(5), "on": flags.is_enabled(flag, {"key": "u"})}
    os.killpg(service_pid, signal.SIGSTOP)
    try:
        report["enroll"], report["enroll_ticks"] = ticking_while(
            lambda: flags.enroll("beta", {"key": "u"})
        )
        started = time.monotonic()
        _, report["close_ticks"] = ticking_while(lambda: flags.close(timeout=1.0))
        report["close_seconds"] = time.monotonic() - started
    finally:
        os.killpg(service_pid, signal.SIGCONT)
    # The client's greenlets ran on this thread: its signals must still reach it
    report["mask_kept"] = signal.pthread_sigmask(signal.SIG_BLOCK, []) == mask
    print(json.dumps(report))
    """
)


def test_gevent__service_frozen__enroll_and_close_leave_other_greenlets_running(
    running: Live,
) -> None:
    assert running.service.process is not None
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            PROGRAM,
            running.service.url,
            running.sdk_key,
            FLAG,
            str(running.service.process.pid),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert report["ready"] is True and report["on"] is True
    # The enrolment waited its 1.5 s timeout on the frozen service; the hub went on
    assert report["enroll"] is False
    assert report["enroll_ticks"] >= 50
    assert report["close_seconds"] < 1.6
    assert report["close_ticks"] >= 1
    # And the client's greenlets left the app's signal mask alone (_threads.py)
    assert report["mask_kept"] is True
