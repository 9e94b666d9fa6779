"""gunicorn settings for ``bench/worker_stalls.py``: flagsvc's own, plus probes in the worker.

    gunicorn --config python:worker_probe_conf flagsvc.wsgi:app   (PYTHONPATH=bench)

Everything ``flagsvc.serving`` sets, and inside each worker:

- every request's server time (gunicorn's ``pre_request`` to ``post_request``);
- every garbage collection (generation, pause), through ``gc.callbacks``;
- a greenlet that sleeps 5 ms in a loop: how late it wakes is how long the event loop
  was held, split by the worker thread's own ``/proc`` schedstat into time on the CPU
  (the worker was busy: something held the loop), time runnable but waiting for a CPU
  (the machine: other processes had both cores) and the rest (asleep off the loop: a
  call that blocked the whole process);
- each change's path to the streams: the announcer's ``prepare`` (build) and the
  direct write to every stream socket (``DirectSinks.deliver``), with their times.

Events go to ``FLAGSVC_PROBE_OUT`` as JSON lines, flushed every half second.
``GEVENT_MONITOR_THREAD_ENABLE=1`` with ``GEVENT_MAX_BLOCKING_TIME`` adds gevent's own
report (with stacks) of every greenlet that held the loop longer, in the service log.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import threading
import time
from typing import Any

from flagsvc import serving
from flagsvc.serving import *  # noqa: F403  # flagsvc's settings, as deployed
from flagsvc.serving import worker_booted

OUT = os.environ.get("FLAGSVC_PROBE_OUT", "/tmp/flagsvc-probe.jsonl")
LAG_SLEEP = 0.005
LAG_REPORTED = 0.002  # a wake later than this is recorded

_events: list[dict[str, Any]] = []
_gc_started: list[float] = [0.0, 0.0]  # wall and thread CPU at the start
_gc_total: list[float] = [0.0]  # seconds of collection so far


def _note(kind: str, **fields: Any) -> None:
    _events.append({"kind": kind, "at": time.time(), **fields})


def _schedstat() -> tuple[int, int]:
    """(ns on the CPU, ns runnable and waiting for one) of the calling thread."""
    with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as stat:
        on_cpu, waiting, _ = stat.read().split()
    return int(on_cpu), int(waiting)


def _gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started[:] = [time.perf_counter(), time.thread_time()]
        return
    pause = time.perf_counter() - _gc_started[0]
    cpu = time.thread_time() - _gc_started[1]
    _gc_total[0] += pause
    _note(
        "gc", gen=info["generation"], ms=pause * 1000, cpu=cpu * 1000, collected=info["collected"]
    )


def _lag_loop() -> None:
    import gevent

    while True:
        before = time.perf_counter()
        cpu0, wait0 = _schedstat()
        gevent.sleep(LAG_SLEEP)
        late = time.perf_counter() - before - LAG_SLEEP
        if late > LAG_REPORTED:
            cpu1, wait1 = _schedstat()
            cpu, waited = (cpu1 - cpu0) / 1e6, (wait1 - wait0) / 1e6
            total = (late + LAG_SLEEP) * 1000
            _note("lag", ms=late * 1000, cpu=cpu, runqueue=waited, off=total - cpu - waited)


def _flush_loop() -> None:
    import gevent

    while True:
        gevent.sleep(0.5)
        _flush()


def _flush() -> None:
    taken = _events[:]
    del _events[: len(taken)]
    if taken:
        with open(OUT, "a") as out:
            out.write("".join(json.dumps(event) + "\n" for event in taken))


def _timed(cls: type, name: str, kind: str) -> None:
    original = getattr(cls, name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        started, cpu, at = time.perf_counter(), time.thread_time(), time.time()
        gc_before = _gc_total[0]
        result = original(self, *args, **kwargs)
        gc_ms = (_gc_total[0] - gc_before) * 1000
        _note(
            kind,
            start=at,
            ms=(time.perf_counter() - started) * 1000,
            cpu_ms=(time.thread_time() - cpu) * 1000,
            gc_ms=gc_ms,
            args=repr(args[1:])[:60],
            result=result if isinstance(result, int) else None,
        )
        return result

    setattr(cls, name, wrapper)


def post_worker_init(worker: Any) -> None:  # wraps flagsvc's
    import gevent

    from flagsvc.delivery.cache import SnapshotCache
    from flagsvc.delivery.direct import DirectSinks

    _timed(SnapshotCache, "prepare", "prepare")
    _timed(DirectSinks, "deliver", "deliver")
    boot = os.environ.get("FLAGSVC_PROBE_BOOT", "full")
    if boot == "no-warm-up":
        serving.warm_up_app = lambda app: None
    if boot != "none":
        worker_booted(worker)
    else:
        from flagsvc.observability import gunicorn_errors

        gunicorn_errors.install(worker)
    _note("booted", pid=os.getpid(), frozen=gc.get_freeze_count(), counts=gc.get_count())
    gc.callbacks.append(_gc)
    gevent.signal_handler(signal.SIGUSR2, _heap_report)
    gevent.spawn(_lag_loop)
    gevent.spawn(_flush_loop)


def _heap_report() -> None:
    """On SIGUSR2: what the collector walks (everything not frozen), by type; then time a
    full collection of it."""
    from collections import Counter

    objects = gc.get_objects()
    types = Counter(type(o).__name__ for o in objects)
    modules = Counter(getattr(type(o), "__module__", "?") for o in objects)
    del objects
    started, cpu = time.perf_counter(), time.thread_time()
    collected = gc.collect()
    pause = (time.perf_counter() - started) * 1000
    cpu_ms = (time.thread_time() - cpu) * 1000
    _note(
        "heap",
        tracked=sum(types.values()),
        top=types.most_common(30),
        modules=modules.most_common(15),
        full_ms=pause,
        full_cpu_ms=cpu_ms,
        collected=collected,
        frozen=gc.get_freeze_count(),
    )


def pre_request(worker: Any, req: Any) -> None:
    req.probe_started = time.perf_counter()
    req.probe_cpu = time.thread_time()


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    started = getattr(req, "probe_started", None)
    if started is not None:
        ms = (time.perf_counter() - started) * 1000
        cpu = (time.thread_time() - req.probe_cpu) * 1000
        _note(
            "req",
            ms=ms,
            cpu=cpu,
            path=req.path,
            status=getattr(resp, "status_code", None),
        )


def worker_exit(server: Any, worker: Any) -> None:
    _flush()
