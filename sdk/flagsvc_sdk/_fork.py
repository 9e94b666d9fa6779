"""Clients across ``fork()``: the child parks what it inherited, first use restarts it.

After ``fork()`` only the forking thread exists in the child: a client created before
(gunicorn ``--preload``, ``multiprocessing``, Celery prefork) has no updater and no
metrics thread there, and its connection pool holds the parent's sockets, so two
children would talk on one connection and read each other's answers. Python runs the
handlers of :func:`os.register_at_fork` in the child of every ``os.fork()``; the one
here tells each live client, which parks its state (no threads, no I/O: in a gevent
worker the child has not monkey-patched yet, so anything started now would be a real
thread). The client restarts on its first use in the child, after the server finished
its own set-up, with a fresh connection pool and new threads (see ``Client``).

The check costs the hot path nothing: a parked client answers from an empty plan table,
whose miss is the slow path where the restart happens.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol

__all__ = ["Forkable", "track"]


class Forkable(Protocol):
    """What the fork handler needs from a client."""

    def _park_after_fork(self) -> None:
        """In the child, right after ``fork()``: set aside what belongs to the parent."""
        ...


_clients: weakref.WeakSet[Forkable] = weakref.WeakSet()


def track(client: Forkable) -> None:
    """Tell ``client`` about forks of this process for as long as it lives."""
    _clients.add(client)


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._park_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
