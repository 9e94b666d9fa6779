"""Run the service under gunicorn from ``flagsvc serve``.

Threaded workers (``gthread``) hold many long-lived SDK streams per process without
an async runtime; scale out with more workers or more instances.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from flagsvc.wsgi import app

        return app


def serve_with_gunicorn(*, host: str, port: int, workers: int, threads: int) -> None:
    """Serve ``flagsvc.wsgi:app`` until interrupted."""
    _Gunicorn(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            "timeout": 120,
            "accesslog": "-",
        }
    ).run()
