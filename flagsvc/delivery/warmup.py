"""A worker's first-request costs, paid at boot before it takes traffic.

A freshly started worker pays, on its first SDK request, for its first database
connection, SQLAlchemy compiling each statement of the snapshot build once, the build
itself, and on the first ``evaluate`` compiling the snapshot for the engine: one
worker's first snapshot took 138 ms of CPU (0.9 s with the machine busy) against
0.5 ms for every later one, and every SDK polling at that moment waits behind it
(bench/README.md, "Where a worker's stalls come from"). ``warm_up`` does that work in
gunicorn's ``post_worker_init``, before the worker accepts a connection; and what it
leaves for good (compiled statements, the builder's parts) is then frozen with the rest
of the boot heap (``flagsvc.serving.worker_booted``), out of every later full
garbage collection.

A warm-up is an optimisation only: when the database cannot be read the worker starts
anyway and the first requests pay as before; when it cannot be reached in
``WARM_UP_SECONDS`` (a connect to an address that never answers waits for TCP's own
timeout, about two minutes, past gunicorn's worker timeout) the worker starts serving
and the warm-up goes on beside it.
"""

from __future__ import annotations

import logging
import threading

from flagsvc.delivery.cache import SessionFactory
from flagsvc.delivery.cache import SnapshotCache
from flagsvc.delivery.snapshots import audit_head
from flagsvc.services.environments import list_environments

log = logging.getLogger(__name__)

WARM_UP_SECONDS = 10.0
"""How long a booting worker waits for its warm-up before it serves anyway."""


def warm_up(cache: SnapshotCache, sessions: SessionFactory) -> list[str]:
    """Build, compile and compress every environment's snapshot; the environments warmed.

    Never raises: a failure (the database down, a bad row) is logged and ends the
    warm-up, leaving the rest to the first requests. Built at the head read here, not
    through the cache's head tracker: a tracker confirmed at boot would serve that head
    without asking again for ``FLAGSVC_HEAD_POLL_SECONDS``, before this process listens
    to the broker, so another instance's change made meanwhile would go unseen that
    long; the first request still reads the head, as without a warm-up.
    """
    warmed: list[str] = []
    try:
        with sessions() as session:
            keys = [environment.key for environment in list_environments(session)]
            head = audit_head(session)
        for key in keys:
            entry = cache.get(sessions, key, at_least=head)
            entry.compiled  # noqa: B018  # compiled for ``evaluate`` now, not on its first call
            entry.gzipped()
            warmed.append(key)
    except Exception as error:  # the worker must start whatever the database says
        log.warning("worker warm-up stopped after %d environments: %s", len(warmed), error)
    return warmed


def warm_up_within(
    cache: SnapshotCache, sessions: SessionFactory, seconds: float = WARM_UP_SECONDS
) -> list[str] | None:
    """``warm_up`` on a thread of its own, waited for at most ``seconds``: the
    environments warmed, or None when it is still running (it finishes on its own)."""
    done: list[list[str]] = []
    thread = threading.Thread(
        target=lambda: done.append(warm_up(cache, sessions)), name="flagsvc-warm-up", daemon=True
    )
    thread.start()
    thread.join(seconds)
    if not done:
        log.warning("worker warm-up still running after %g s; serving meanwhile", seconds)
        return None
    return done[0]
