"""gunicorn's logger, without the access line flagsvc writes itself.

gunicorn builds its access line's fields (a dict of some thirty atoms, the time
formatted, a log record) for every request whenever any logging configuration is set,
even with ``accesslog`` unset and its ``gunicorn.access`` logger silenced, which is
how ``flagsvc serve`` runs (``logconfig_dict``: its own lines as JSON). On an SDK poll
answered 304 that was about an eighth of the worker's time (py-spy, bench/README.md).
flagsvc writes the access line itself (``flagsvc.api.instrument``, with request id and
actor), so gunicorn's is built only when ``--access-logfile`` asks for it.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

PATH = f"{__name__}.Logger"
"""What gunicorn's ``logger_class`` setting names."""


class Logger(GunicornLogger):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's logger; its access line only when ``accesslog`` is set."""

    @property
    def access_log_enabled(self) -> bool:
        """Whether gunicorn's access line is written (read by its protocol handlers)."""
        return bool(self.cfg.accesslog)

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """gunicorn's access line, only with ``--access-logfile``."""
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)
