"""The ``flagsvc`` command: init, serve, credentials, audit verification, demo data.

Secrets go alone on stdout (so ``TOKEN=$(flagsvc create-token ...)`` works); every
other message goes to stderr.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any
from typing import cast

import click
from flask import Flask
from sqlalchemy import select

from flagsvc import create_app
from flagsvc.domain.roles import Role
from flagsvc.services import audit
from flagsvc.services import credentials
from flagsvc.services import environments
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Change
from flagsvc.state import AppState
from flagsvc.storage import migrate
from flagsvc.storage.models import ApiToken


def _state(app: Flask) -> AppState:
    return cast(AppState, app.extensions["flagsvc"])


def _change(app: Flask, actor_name: str = "cli") -> Change:
    actor = SYSTEM if actor_name == "system" else type(SYSTEM)(name=actor_name, role=None)
    return Change(actor=actor, at=_state(app).clock(), request_id=f"cli-{uuid.uuid4().hex[:12]}")


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """flagsvc: staged-release feature flags."""
    ctx.obj = create_app()


@main.command()
@click.pass_obj
def init(app: Flask) -> None:
    """Migrate the database, create the default environments and a first admin token."""
    state = _state(app)
    migrate.upgrade(state.config.database_url)
    with state.db.write() as session:
        created = environments.ensure_default_environments(session, _change(app))
        has_admin = (
            session.scalar(select(ApiToken.id).where(ApiToken.role == Role.ADMIN.value)) is not None
        )
        secret = (
            None
            if has_admin
            else credentials.create_token(session, _change(app), "first-admin", Role.ADMIN)[1]
        )
    created_text = ", ".join(created) or "none (all exist)"
    _say(f"database ready ({state.db.dialect}); environments created: {created_text}")
    if secret:
        _say("first admin token (shown once; keep it):")
        click.echo(secret)
    else:
        _say("an admin token exists; make another: flagsvc create-token --name N --role admin")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
@click.option("--threads", default=32, show_default=True, type=int)
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the API, SDK endpoints and UI with gunicorn."""
    from flagsvc.serving import serve_with_gunicorn

    serve_with_gunicorn(host=host, port=port, workers=workers, threads=threads)


@main.command("create-token")
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.pass_obj
def create_token(app: Flask, name: str, role: str) -> None:
    """Create an admin-API token and print it alone on stdout."""
    with _state(app).db.write() as session:
        _, secret = credentials.create_token(session, _change(app), name, Role(role))
    click.echo(secret)


@main.command("create-sdk-key")
@click.option("--environment", required=True)
@click.pass_obj
def create_sdk_key(app: Flask, environment: str) -> None:
    """Create an SDK key for an environment and print it alone on stdout."""
    with _state(app).db.write() as session:
        _, secret = credentials.create_sdk_key(session, _change(app), environment)
    click.echo(secret)


@main.group("audit")
def audit_group() -> None:
    """Audit log commands."""


@audit_group.command("verify")
@click.pass_obj
def audit_verify(app: Flask) -> None:
    """Recompute the hash chain; exit 1 and name the first broken link if it fails."""
    with _state(app).db.read() as session:
        report = audit.verify(session)
    if report.valid:
        click.echo(f"audit chain valid: {report.events_checked} events")
        return
    click.echo(
        f"audit chain BROKEN at event {report.first_broken_seq}: {report.reason} "
        f"({report.events_checked} events verified before it)"
    )
    sys.exit(1)


def run(*args: Any) -> None:
    """Entry for tests: run the CLI in-process."""
    main.main(args=list(args), standalone_mode=False)
