"""WSGI entry point for gunicorn: ``gunicorn flagsvc.wsgi:app``."""

from __future__ import annotations

from flagsvc import create_app

app = create_app()
