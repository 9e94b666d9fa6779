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

uWSGI forks its workers in C, without ``os.fork()``: Python's fork handlers run there
only with ``py-call-osafterfork``, so the handler is also put on uWSGI's own post-fork
hook (``uwsgidecorators.postfork``). And a uWSGI master that loads the app (no
``lazy-apps``) must run no thread of ours: it forks without taking Python's locks, so
a worker forked while one of our threads held the GIL waits for it forever (seen:
``take_gil`` in ``uwsgi_python_master_fixup``). There a client starts no thread
(:func:`in_uwsgi_master`); ``wait_until_ready`` fetches on the caller's thread, and
each worker starts its own threads after the fork.
"""

from __future__ import annotations

import importlib
import os
import weakref
from collections.abc import Callable
from types import ModuleType
from typing import Protocol

__all__ = ["Forkable", "in_uwsgi_master", "track", "uwsgi_without_threads"]


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
        client._park_after_fork()  # idempotent: uWSGI may run this twice (see above)


def _uwsgi() -> ModuleType | None:
    """uWSGI's embedded module where this process runs under uWSGI, else ``None``."""
    try:
        return importlib.import_module("uwsgi")
    except ImportError:
        return None


_TRUE = (b"1", b"true", b"yes", b"on", b"y", b"t")


def _on(options: dict[str, object], *names: str) -> bool:
    """A uWSGI option is set: ``--master`` gives ``True``, ``master = true`` ``b"true"``."""
    for name in names:
        value = options.get(name)
        if value is True or (isinstance(value, bytes) and value.lower() in _TRUE):
            return True
    return False


def in_uwsgi_master() -> bool:
    """This process is a uWSGI master that loads the app and then forks its workers:
    no thread of ours may run here (see the module's docstring)."""
    uwsgi = _uwsgi()
    if uwsgi is None:
        return False
    try:
        options = uwsgi.opt
        if not _on(options, "master") or _on(options, "lazy-apps", "lazy"):
            return False
        return bool(uwsgi.worker_id() == 0 and uwsgi.mule_id() == 0)
    except Exception:  # an older or stripped-down uWSGI: behave as anywhere else
        return False


def uwsgi_without_threads() -> bool:
    """Running under uWSGI without ``enable-threads``: our threads would never run."""
    uwsgi = _uwsgi()
    if uwsgi is None:
        return False
    try:
        return not _on(uwsgi.opt, "enable-threads", "threads")
    except Exception:
        return False


def _hook_uwsgi() -> None:
    """Put the fork handler on uWSGI's post-fork hook (uWSGI forks in C)."""
    uwsgi = _uwsgi()
    if uwsgi is None:
        return
    try:  # the chain uwsgidecorators keeps (it replaces post_fork_hook when imported)
        importlib.import_module("uwsgidecorators").postfork(_after_fork_in_child)
    except ImportError:
        previous: Callable[[], object] | None = getattr(uwsgi, "post_fork_hook", None)

        def hook() -> None:
            _after_fork_in_child()
            if previous is not None:
                previous()

        setattr(uwsgi, "post_fork_hook", hook)  # noqa: B010 - a C module, untyped


os.register_at_fork(after_in_child=_after_fork_in_child)
_hook_uwsgi()
