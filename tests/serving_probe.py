"""A tiny WSGI app run by real gunicorn workers with flagsvc's settings (``flagsvc.serving``).

Tests of what ``flagsvc.serving`` does to a worker (its worker class, its boot hook) look
from inside the worker through it: ``GET /gc`` tells whether an object made when the app
was imported is still in the garbage collector's reach (and the collector's thresholds,
whether it runs now and whether it ran while the app was imported), ``GET /order`` lists the paths
answered so far, in order. ``GET /spin`` busy-waits (never yielding to gevent) until the
file named in ``X-Wait-For`` exists, to hold the worker while a test lines up requests.
``running`` starts gunicorn with it on a free port.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.live import die_with_parent
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[1]
BOOT_MARKER = ["made when the app was imported"]
COLLECTING_AT_IMPORT = gc.isenabled()
ORDER: list[str] = []
SPIN_LIMIT_SECONDS = 30.0


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer ``/gc``, ``/order``; record and answer anything else (``/spin`` spins first)."""
    path = environ["PATH_INFO"]
    if path == "/gc":
        reachable = any(o is BOOT_MARKER for o in gc.get_objects())
        body = json.dumps(
            {
                "frozen": gc.get_freeze_count(),
                "marker_reachable": reachable,
                "threshold": gc.get_threshold(),
                "collecting": gc.isenabled(),
                "collecting_at_import": COLLECTING_AT_IMPORT,
            }
        )
    elif path == "/order":
        body = json.dumps(ORDER)
    else:
        ORDER.append(path)
        if path == "/spin":
            _spin_until(environ.get("HTTP_X_WAIT_FOR", ""))
        body = "ok"
    data = body.encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


def _spin_until(flag: str) -> None:
    """Busy-wait, never yielding to gevent, until ``flag`` exists (bounded)."""
    deadline = time.monotonic() + SPIN_LIMIT_SECONDS
    while not os.path.exists(flag) and time.monotonic() < deadline:
        pass


@contextlib.contextmanager
def running(*gunicorn_args: str) -> Iterator[int]:
    """gunicorn with flagsvc's settings serving this app (one worker); yields its port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGSVC_")}
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:flagsvc.serving"]
    argv += ["--bind", f"127.0.0.1:{port}", *gunicorn_args, "tests.serving_probe:app"]
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    try:
        _wait_listening(port, process)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "gunicorn exited"
        with contextlib.suppress(OSError):
            get(port, "/order")
            return
        time.sleep(0.05)
    raise RuntimeError("gunicorn did not answer")


def get(port: int, path: str) -> Any:
    """``GET path`` on a connection of its own; the JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return json.loads(answer.partition(b"\r\n\r\n")[2])
