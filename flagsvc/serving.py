"""gunicorn settings for flagsvc, and ``flagsvc serve``.

Worker class: **gevent**, gunicorn's with keep-alive connections taking turns
(``flagsvc.gevent_worker``; measured in ``bench/propagation.py`` and
``bench/sdk_http.py``, figures in bench/README.md). An SDK stream is a request that
never ends, so a worker must hold one per connected SDK: ``gthread`` ties up one OS
thread per stream (and a stream cap below its thread count, or snapshot fetches queue
behind streams), while a gevent worker holds thousands of idle greenlets in one process
and delivered a change to 1,000 streams in p99 146 ms against gthread's 236 ms. The
price: each database round trip costs about twice as much under gevent, so polling-heavy
traffic runs up to 2x faster on ``FLAGSVC_WORKER_CLASS=gthread`` (then keep
``FLAGSVC_MAX_STREAMS`` well below ``--threads``). psycopg 3 (≥ 3.1.14) and redis-py
cooperate with gevent's monkey-patching; psycopg decides at import time, which is why
``flagsvc`` imports nothing heavy at package import and why ``flagsvc serve`` starts
gunicorn in a fresh interpreter instead of inside the CLI (which built an app, and so
imported psycopg, before any patching).

Read by gunicorn three ways, all the same settings:
``flagsvc serve``, ``gunicorn -c gunicorn.conf.py flagsvc.wsgi:app`` and
``gunicorn -c python:flagsvc.serving flagsvc.wsgi:app``. Environment knobs:
``FLAGSVC_WORKER_CLASS`` (``gevent`` | ``gthread``), ``FLAGSVC_WORKERS``,
``FLAGSVC_WORKER_CONNECTIONS`` (gevent: connections per worker, default 4000),
``FLAGSVC_THREADS`` (gthread), ``FLAGSVC_ACCESS_LOG`` (``0`` turns it off).
Command-line flags win over these. Importing this module validates the whole
configuration (``flagsvc.config``: marshmallow and the standard library, nothing that
gevent must patch first), so gunicorn's master refuses a bad environment before it forks
and exits 78 with one line per problem. With more than one worker (or instance), set
``REDIS_URL``: without it, workers hear of each other's changes only through the
audit-head poll (``FLAGSVC_HEAD_POLL_SECONDS``, 2 s).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Mapping
from typing import Any
from typing import NoReturn

from flagsvc.config import load
from flagsvc.config import refuse_bad_config
from flagsvc.observability import gunicorn_errors
from flagsvc.observability import workers as metrics_workers
from flagsvc.observability.logging import gunicorn_logconfig


def settings(env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """gunicorn's settings by name, from the validated environment (stream-friendly defaults).

    :raise ConfigError: naming every bad variable, the application's included: the master
        checks them all before it forks, so a typo stops the start instead of every worker.
    """
    config = load(env)
    return {
        "bind": config.bind,
        "workers": config.workers,
        # gevent: gunicorn's worker, taking turns between keep-alive connections
        "worker_class": WORKER_CLASSES[config.worker_class],
        # gevent: open connections one worker holds (streams + ordinary requests);
        # above FLAGSVC_MAX_STREAMS (2000) so snapshot fetches always get in.
        "worker_connections": config.worker_connections,
        "threads": config.threads,  # gthread only
        "timeout": 120,
        "graceful_timeout": 5,  # streams never finish on their own; SDKs reconnect
        "keepalive": 5,
        "backlog": 4096,
        # flagsvc writes the access line itself (JSON, with request id and actor):
        # FLAGSVC_ACCESS_LOG=0 turns that off (flagsvc.api.instrument)
        "accesslog": None,
        "logconfig_dict": gunicorn_logconfig(config.log_format, config.log_level),
        # ... and gunicorn builds its own line only when --access-logfile asks for it
        "logger_class": "flagsvc.observability.gunicorn_logger.Logger",
        # several workers share one /metrics through PROMETHEUS_MULTIPROC_DIR
        "on_starting": metrics_workers.on_starting,
        "child_exit": metrics_workers.child_exit,
        "on_exit": metrics_workers.on_exit,
        # no garbage collection while the worker imports and builds the app ...
        "post_fork": worker_forked,
        # ... then gunicorn's own 414 / 431 / 400 answers in the API's JSON error shape,
        # and the heap the worker booted with kept out of the garbage collector's full passes
        "post_worker_init": worker_booted,
        # one fixed control-socket path per user would collide between instances
        "control_socket_disable": True,
    }


WORKER_CLASSES = {"gevent": "flagsvc.gevent_worker.TurnTakingGeventWorker", "gthread": "gthread"}
"""``FLAGSVC_WORKER_CLASS`` to gunicorn's ``worker_class`` (named, never imported here)."""


def worker_forked(_server: Any = None, _worker: Any = None) -> None:
    """gunicorn's ``post_fork``: turn the garbage collector off until ``worker_booted``.

    The worker now patches the standard library (gevent), imports flagsvc and builds the
    app: some 200,000 objects that all live as long as the process, and allocating them
    set off collection after collection that walked the ever larger heap and found
    almost nothing to free (0.1-0.2 CPU-s of a worker's start; bench/boot.py).
    ``worker_booted`` collects once, freezes what is left and turns it back on; a worker
    whose app fails to load exits without serving.
    """
    gc.disable()


def worker_booted(worker: Any = None) -> None:
    """gunicorn's ``post_worker_init``: the worker has loaded the app and serves next.

    Installs the JSON error writer, pays the first SDK requests' costs now
    (``warm_up_app``), then moves every object alive now (the app, its modules,
    SQLAlchemy's and marshmallow's metadata, the statements and snapshots the warm-up
    compiled: some 150,000) out of the garbage collector's reach with ``gc.freeze()``.
    They live as long as the process, yet every full (generation 2) collection walked
    them all: about 100 ms of CPU, in which the one worker answers nothing (under 1 ms
    frozen; bench/README.md). What is allocated from here on is collected as before,
    the full collections ten times less often (``FULL_COLLECTION_AFTER``). Collected
    first, so no garbage is frozen.
    """
    gunicorn_errors.install(worker)
    warm_up_app(getattr(worker, "wsgi", None))
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)
    gc.enable()  # off since ``worker_forked``


FULL_COLLECTION_AFTER = 100
"""Middle (generation 1) collections before a full one may run (CPython: 10).

What a full collection walks is what was allocated since boot and is still alive, and
every open SDK stream is some 78 objects of it (its greenlet, frames, gunicorn's
request and response, its socket): with 1,000 streams one took 53-83 ms of CPU in which
the worker answered nothing and wrote no change event, and came about once in ten
changes (each change's build survives into the old generation). Ten times fewer full
collections leave cyclic garbage that outlived two younger collections (a few hundred
objects between two full collections in the probes) ten times longer: a few megabytes
at most. bench/README.md, "Where a worker's stalls come from"."""


def warm_up_app(app: Any) -> None:
    """Warm flagsvc's delivery (``flagsvc.delivery.warmup``) when ``app`` is flagsvc's.

    Any other WSGI callable (a test's probe app) is left alone; imported here, in the
    worker, because this module must stay importable before gevent patches anything.
    """
    state = getattr(app, "extensions", {}).get("flagsvc")
    if state is None:
        return
    from flagsvc.delivery.warmup import warm_up_within

    warm_up_within(state.snapshots, state.db.read)


def gunicorn_argv(
    *, host: str, port: int, workers: int | None = None, threads: int | None = None
) -> list[str]:
    """The gunicorn command line ``flagsvc serve`` runs (exec'd, or as a child process).

    Worker and thread counts go on the command line only when given, so
    ``FLAGSVC_WORKERS`` / ``FLAGSVC_THREADS`` apply otherwise.
    """
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:flagsvc.serving"]
    argv += ["--bind", f"{host}:{port}"]
    if workers is not None:
        argv += ["--workers", str(workers)]
    if threads is not None:
        argv += ["--threads", str(threads)]
    return [*argv, "flagsvc.wsgi:app"]


def serve_with_gunicorn(argv: list[str]) -> NoReturn:
    """Replace this process with gunicorn running ``argv`` (from ``gunicorn_argv``).

    ``exec`` keeps the process id (signals and supervisors see gunicorn itself) and
    gives gevent a clean interpreter to patch.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


# gunicorn reads the module's names that match its settings (``-c python:flagsvc.serving``);
# ``gunicorn.conf.py`` imports this module too, so both stop here on a bad environment.
with refuse_bad_config():
    _SETTINGS = settings()
bind = _SETTINGS["bind"]
workers = _SETTINGS["workers"]
worker_class = _SETTINGS["worker_class"]
worker_connections = _SETTINGS["worker_connections"]
threads = _SETTINGS["threads"]
timeout = _SETTINGS["timeout"]
graceful_timeout = _SETTINGS["graceful_timeout"]
keepalive = _SETTINGS["keepalive"]
backlog = _SETTINGS["backlog"]
accesslog = _SETTINGS["accesslog"]
logconfig_dict = _SETTINGS["logconfig_dict"]
logger_class = _SETTINGS["logger_class"]
on_starting = _SETTINGS["on_starting"]
child_exit = _SETTINGS["child_exit"]
on_exit = _SETTINGS["on_exit"]
post_fork = _SETTINGS["post_fork"]
post_worker_init = _SETTINGS["post_worker_init"]
control_socket_disable = _SETTINGS["control_socket_disable"]
