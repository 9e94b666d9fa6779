"""gunicorn hooks that give several worker processes one ``/metrics``.

prometheus_client's multiprocess mode: every process writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` and a scrape, whichever worker answers it, sums them.

- ``on_starting`` (master, before the first fork): with more than one worker and no
  folder configured, make a fresh temporary one; the workers inherit the variable.
  A folder the operator configured is used as it is: it should be empty at start
  (prometheus_client would otherwise add the previous run's counts).
- ``child_exit`` (master): a dead worker's live gauges (open streams) stop counting.
- ``on_exit`` (master): remove the folder ``on_starting`` made.
- ``serve --with-scheduler`` runs its scheduler in the process that supervises
  gunicorn: ``restart_with_metrics_folder`` gives that process the folder too.

These run in gunicorn's master, which must not import what gevent patches in the
workers: only ``child_exit`` imports prometheus_client, and that holds no I/O and
no lock across a greenlet switch, so workers forked after it are unaffected.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_MADE_HERE = "FLAGSVC_METRICS_DIR_MADE"  # the folder on_starting created (removed on exit)


def prepare_multiprocess(processes: int, env: Any = os.environ) -> str | None:
    """Make and announce a fresh metrics folder when ``processes`` > 1 and none is set.

    :return: the folder in use, or None (one process: the plain registry).
    """
    configured = env.get(MULTIPROCESS_ENV)
    if configured:
        os.makedirs(configured, exist_ok=True)
        return str(configured)
    if processes <= 1:
        return None
    folder = tempfile.mkdtemp(prefix="flagsvc-metrics-")
    env[MULTIPROCESS_ENV] = env[_MADE_HERE] = folder
    return folder


def remove_made_folder(env: Any = os.environ) -> None:
    """Remove the folder ``prepare_multiprocess`` made (never an operator's)."""
    folder = env.pop(_MADE_HERE, None)
    if folder and env.get(MULTIPROCESS_ENV) == folder:
        shutil.rmtree(folder, ignore_errors=True)


def on_starting(server: Any) -> None:
    """gunicorn hook: set up multiprocess metrics before the workers fork."""
    prepare_multiprocess(int(server.cfg.workers))


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook: stop counting the exited worker's live gauges."""
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    """gunicorn hook: clean up a metrics folder made at start."""
    remove_made_folder()


def restart_with_metrics_folder(argv: Sequence[str], env: Any = os.environ) -> None:
    """Exec ``argv`` again with a fresh metrics folder, unless one is set (then return).

    For ``flagsvc serve --with-scheduler``: its scheduler counts in the supervising
    process, which imported prometheus_client (fixing its mode) before the command
    line was read; only a fresh interpreter writes to the folder the workers share.
    """
    if env.get(MULTIPROCESS_ENV):
        return
    prepare_multiprocess(2, env)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, list(argv))
