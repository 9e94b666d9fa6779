"""The ``flagsvc`` command: init, serve, credentials, audit verification, demo data.

Secrets go alone on stdout (so ``TOKEN=$(flagsvc create-token ...)`` works); every
other message goes to stderr.

Each command imports what it uses when it runs: ``flagsvc serve`` execs gunicorn, which
imports the app again in its workers, so the services, SQLAlchemy and Flask imported
here first would only delay every start (by seconds of CPU on a small machine).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any
from typing import Concatenate
from typing import ParamSpec
from typing import TypeVar
from typing import cast

import click

from flagsvc import config as configuration
from flagsvc import create_state
from flagsvc.domain.errors import DomainError
from flagsvc.domain.roles import Role

if TYPE_CHECKING:
    from flagsvc.services.context import Change
    from flagsvc.state import AppState

SCHEDULER_INTERVAL = 30.0
"""``flagsvc scheduler``'s default ``--interval``: ``scheduler.DEFAULT_INTERVAL``, named
here so that the command line is built without importing the services."""


def _change(state: AppState, actor_name: str = "cli") -> Change:
    from flagsvc.services.context import SYSTEM
    from flagsvc.services.context import Change

    actor = SYSTEM if actor_name == "system" else type(SYSTEM)(name=actor_name, role=None)
    return Change(actor=actor, at=state.clock(), request_id=f"cli-{uuid.uuid4().hex[:12]}")


def _say(message: str) -> None:
    click.echo(message, err=True)


P = ParamSpec("P")
R = TypeVar("R")


def _state() -> AppState:
    """The application's state (storage, delivery, clock), built once per command, when
    the command first needs it: what ``create_app`` binds to its app, without the app.

    No command serves HTTP, so none builds the Flask app, its routes and its OpenAPI
    document (0.4 CPU-s of every command; bench/boot.py). Built lazily so that
    ``--help`` and ``check-config`` work without a usable configuration, and ``serve``
    can exec gunicorn without importing the services first. A bad configuration exits
    78 with every problem on stderr.

    The garbage collector is off while the state is built, and what exists then is
    frozen (``gc.freeze``, as a gunicorn worker does once booted): the modules and
    the state live as long as the command, yet collections during the imports and the
    interpreter's final collection at exit walked them all, 0.3 CPU-s of each command
    (``flagsvc init`` 1.4 -> 0.7 CPU-s with the app left out; bench/boot.py). The few
    hundred objects of garbage the imports leave (780) are frozen with them, not freed:
    a full collection to find them costs 0.07 CPU-s. (A process that runs commands in
    itself, as the tests do with click's runner, so freezes the garbage pending then.)
    """
    root = click.get_current_context().find_root()
    if root.obj is None:
        collecting = gc.isenabled()
        gc.disable()
        try:
            with configuration.refuse_bad_config():
                root.obj = create_state(configuration.Config.from_env(None))
        finally:
            gc.freeze()
            if collecting:
                gc.enable()
    return cast("AppState", root.obj)


def pass_state(command: Callable[Concatenate[AppState, P], R]) -> Callable[P, R]:
    """Call ``command`` with the application's state as its first argument (like
    ``click.pass_obj``)."""

    @functools.wraps(command)
    def with_state(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(_state(), *args, **kwargs)
        except DomainError as error:  # an unknown environment, key, ...: say it, exit 1
            raise click.ClickException(error.message) from None

    return with_state


class _OneLineErrors(click.Group):
    """Every failure is one line on stderr and a non-zero exit, never a traceback.

    Click's own errors (a bad option, a refused input) already are; anything else that
    escapes a command (the database cannot be reached, a disk is full) is said in one
    line naming what failed, exit 1. ``FLAGSVC_TRACEBACK=1`` shows the traceback for a
    bug report.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as error:
            if os.environ.get("FLAGSVC_TRACEBACK") == "1":
                raise
            raise click.ClickException(_one_line(error)) from None


def _one_line(error: BaseException) -> str:
    """``error`` as one readable line: its first line, the cause first for database errors."""
    from sqlalchemy.exc import InterfaceError
    from sqlalchemy.exc import OperationalError

    original = getattr(error, "orig", None)  # SQLAlchemy wraps the driver's error
    shown = original if isinstance(original, BaseException) else error
    first = (str(shown).strip().splitlines() or [""])[0].strip()
    if isinstance(error, (OperationalError, InterfaceError)):
        return f"cannot use the database: {first or type(shown).__name__}"
    return f"{type(shown).__name__}: {first}" if first else type(shown).__name__


@click.group(cls=_OneLineErrors)
@click.version_option(package_name="flagsvc", prog_name="flagsvc", message="%(prog)s %(version)s")
def main() -> None:
    """flagsvc: staged-release feature flags."""


@main.command("check-config")
def check_config() -> None:
    """Validate the environment and print the effective settings (secrets hidden)."""
    with configuration.refuse_bad_config():
        config = configuration.load(os.environ)
    for name, value in config.summary().items():
        click.echo(f"{name}={value}")
    known = set(configuration.variable_names().values())
    for name in sorted(n for n in os.environ if n.startswith("FLAGSVC_") and n not in known):
        _say(f"warning: {name} is not a flagsvc setting (a typo?); it is ignored")
    _say(f"configuration valid ({config.mode} mode)")


@main.command()
@pass_state
def init(state: AppState) -> None:
    """Migrate the database, create the default environments and a first admin token;
    give every flag its missing states (each repair audited)."""
    secret = _initialise(state)
    if secret:
        _say("first admin token (shown once; keep it):")
        click.echo(secret)
    else:
        _say("an admin token exists; make another: flagsvc create-token --name N --role admin")


def _initialise(state: AppState) -> str | None:
    """``init``'s work; the first admin token's secret when it made one."""
    from sqlalchemy import select

    from flagsvc.services import audit
    from flagsvc.services import credentials
    from flagsvc.services import environments
    from flagsvc.storage import migrate
    from flagsvc.storage.models import ApiToken

    migrate.upgrade(state.config.database_url)
    with state.db.write() as session:
        created = environments.ensure_default_environments(session, _change(state))
        repaired = environments.repair_flag_states(session, _change(state))
        has_admin = (
            session.scalar(select(ApiToken.id).where(ApiToken.role == Role.ADMIN.value)) is not None
        )
        secret = (
            None
            if has_admin
            else credentials.create_token(session, _change(state), "first-admin", Role.ADMIN)[1]
        )
    if state.audit_keys.keys:
        with state.db.write() as session:
            sealed = audit.seal_chain(session, _change(state, "system"))
        if sealed:
            _say(f"audit chain sealed with the audit key (key id {state.audit_keys.current_id})")
    created_text = ", ".join(created) or "none (all exist)"
    _say(f"database ready ({state.db.dialect}); environments created: {created_text}")
    if repaired:
        named = ", ".join(f"{flag} in {env}" for flag, env in repaired[:20])
        more = f" and {len(repaired) - 20} more" if len(repaired) > 20 else ""
        _say(f"flag states repaired (dark, audited): {named}{more}")
    return secret


def welcome_block(host: str, port: int, secret: str | None) -> str:
    """The framed "open the UI and sign in" block ``serve --init`` prints once it listens.

    Framed and last, so the token does not scroll away among the start-up log lines.
    """
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{shown_host}:{port}/ui/"
    if secret:
        lines = [
            f"flagsvc is running: open {url} and sign in with this token",
            "",
            f"    {secret}",
            "",
            "It is shown once: keep it (a password manager, not a chat).",
        ]
    else:
        lines = [
            f"flagsvc is running: open {url} and sign in with your admin token",
            "",
            "Lost it? Make another: flagsvc create-token --name me --role admin",
        ]
    width = max(len(line) for line in lines)
    rule = "+" + "-" * (width + 2) + "+"
    return "\n".join([rule, *(f"| {line.ljust(width)} |" for line in lines), rule])


def _wait_until_listening(host: str, port: int, alive: Callable[[], bool]) -> bool:
    """Wait (up to a minute) until ``host:port`` accepts connections; False if it never did."""
    target = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(OSError), socket.create_connection((target, port), timeout=1):
            return True
        time.sleep(0.2)
    return False


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", type=click.IntRange(min=1), help="Default: FLAGSVC_WORKERS, else 1.")
@click.option("--threads", type=click.IntRange(min=1), help="Default: FLAGSVC_THREADS, else 32.")
@click.option(
    "--with-scheduler",
    is_flag=True,
    help="Also run due launches from a daemon thread of this process (the embedded default).",
)
@click.option(
    "--init",
    "initialise",
    is_flag=True,
    help="Run `flagsvc init` first, then say where to sign in (with the first token, if new).",
)
def serve(
    host: str,
    port: int,
    workers: int | None,
    threads: int | None,
    with_scheduler: bool,
    initialise: bool,
) -> None:
    """Serve the API, SDK endpoints and UI with gunicorn."""
    from flagsvc.observability import workers as metrics_workers
    from flagsvc.serving import gunicorn_argv
    from flagsvc.serving import serve_with_gunicorn

    with configuration.refuse_bad_config():  # here, before gunicorn starts and says it less clearly
        configuration.load(os.environ)

    argv = gunicorn_argv(host=host, port=port, workers=workers, threads=threads)
    if with_scheduler:
        metrics_workers.restart_with_metrics_folder(sys.orig_argv)  # its counts reach /metrics
        secret = _initialise(_state()) if initialise else None
        welcome = welcome_block(host, port, secret) if initialise else None
        sys.exit(_serve_beside_scheduler(_state(), argv, welcome, (host, port)))
    if initialise:  # gunicorn replaces this process: the block comes before its lines
        _say(welcome_block(host, port, _initialise(_state())))
    serve_with_gunicorn(argv)


def _serve_beside_scheduler(
    state: AppState, argv: list[str], welcome: str | None = None, bind: tuple[str, int] = ("", 0)
) -> int:
    """Run gunicorn as a child and the scheduler in a daemon thread here; return its status.

    This process supervises gunicorn instead of becoming it (``exec``), so the thread
    and its imports (psycopg, SQLAlchemy) never end up in gunicorn's master, whose
    gevent workers must import them only after monkey-patching. Signals are passed on.
    """
    from flagsvc.observability.logging import configure as configure_logging
    from flagsvc.services import scheduler

    configure_logging(state.config.log_format, state.config.log_level, default_format="json")
    stop = scheduler.start_in_background(state.db, state.clock)
    stop_webhooks = _start_webhooks(state)
    child = subprocess.Popen(argv)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda number, _frame: child.send_signal(number))
    logging.getLogger(__name__).info(
        "The scheduler runs beside gunicorn (pid %s), looking for due launches.", child.pid
    )
    if welcome is not None:
        threading.Thread(
            target=_welcome_when_listening,
            args=(welcome, bind, lambda: child.poll() is None),
            daemon=True,
        ).start()
    status = child.wait()
    stop.set()
    stop_webhooks.set()
    return status


def _start_webhooks(state: AppState) -> threading.Event:
    """The webhook worker, in a daemon thread beside the scheduler (set the event to stop it)."""
    from flagsvc.services.webhooks import worker as webhook_worker

    config = state.config
    return webhook_worker.start_in_background(
        state.db, state.clock, config.webhook_timeout_seconds, config.webhook_allow_private
    )


def _welcome_when_listening(welcome: str, bind: tuple[str, int], alive: Callable[[], bool]) -> None:
    if _wait_until_listening(*bind, alive):
        time.sleep(0.5)  # after the workers' boot lines, so the block is last
        _say(welcome)


@main.command("scheduler")
@click.option("--once", is_flag=True, help="Run the launches due now, then exit (cron, tests).")
@click.option(
    "--interval",
    default=SCHEDULER_INTERVAL,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between looks for due launches.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=1, max=65535),
    help="Serve this process's Prometheus metrics on 0.0.0.0:PORT/metrics.",
)
@pass_state
def scheduler_command(
    state: AppState, once: bool, interval: float, metrics_port: int | None
) -> None:
    """Run scheduled launches when due (exactly once, however many schedulers run) and
    deliver webhooks."""
    from flagsvc.observability import metrics as observed_metrics
    from flagsvc.observability.logging import configure as configure_logging
    from flagsvc.services import scheduler

    if once:
        outcomes = scheduler.run_due_launches(state.db, state.clock)
        for outcome in outcomes:
            _say(outcome.sentence())
        _say(f"{len(outcomes)} launches handled")
        _say(f"{_deliver_once(state)} webhook deliveries attempted")
        return
    configure_logging(state.config.log_format, state.config.log_level, default_format="json")
    if metrics_port is not None:
        observed_metrics.serve_exposition(metrics_port)
    _say(f"scheduler: looking for due launches every {interval:g} s (Ctrl-C stops)")
    stop_webhooks = _start_webhooks(state)
    with contextlib.suppress(KeyboardInterrupt):
        scheduler.run_forever(state.db, state.clock, interval)
    stop_webhooks.set()


def _deliver_once(state: AppState) -> int:
    """Attempt the webhook deliveries due now (``flagsvc scheduler --once``)."""
    from flagsvc.services.webhooks import notices as webhook_notices
    from flagsvc.services.webhooks import worker as webhook_worker
    from flagsvc.services.webhooks.sender import Sender

    config = state.config
    sender = Sender(config.webhook_timeout_seconds, config.webhook_allow_private)
    try:
        webhook_notices.find(state.db, state.clock())
        return len(webhook_worker.run_due(state.db, sender, state.clock))
    finally:
        sender.close()


@main.command()
@pass_state
def demo(state: AppState) -> None:
    """Load a realistic quarter of demo data (refused, changing nothing, if it exists)."""
    from flagsvc.services import demo as demo_data
    from flagsvc.storage import migrate

    migrate.upgrade(state.config.database_url)
    summary = demo_data.load(state.db, state.clock(), state.early_adopters)
    if summary is None:
        _say("demo data already loaded; nothing changed")
        return
    for line in summary.lines():
        _say(line)


@main.command("create-token")
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@pass_state
def create_token(state: AppState, name: str, role: str) -> None:
    """Create an admin-API token and print it alone on stdout."""
    from flagsvc.services import credentials

    with state.db.write() as session:
        _, secret = credentials.create_token(session, _change(state), name, Role(role))
    click.echo(secret)


@main.command("create-sdk-key")
@click.option("--environment", required=True)
@pass_state
def create_sdk_key(state: AppState, environment: str) -> None:
    """Create an SDK key for an environment and print it alone on stdout."""
    from flagsvc.services import credentials

    with state.db.write() as session:
        _, secret = credentials.create_sdk_key(session, _change(state), environment)
    click.echo(secret)


@main.command("export-snapshot")
@click.option("--environment", required=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the file here (replaced atomically) instead of printing it on stdout.",
)
@click.option(
    "--spec",
    type=click.Choice(["1", "2"]),
    default="2",
    show_default=True,
    help="1 for flagsvc-sdk 1.0.0, which reads only spec 1 (flags it cannot say are left out).",
)
@pass_state
def export_snapshot(state: AppState, environment: str, output: str | None, spec: str) -> None:
    """Print an environment's SDK snapshot: a bootstrap file for the SDKs.

    The same JSON ``GET /sdk/v1/snapshot`` serves. Ship it with the application and pass
    it as ``Client(..., bootstrap_path=...)``: the application then answers from it when
    it starts while the service cannot be reached.
    """
    from flagsvc.delivery import spec1

    encoded = state.snapshots.get(state.db.read, environment).encoded
    body = spec1.body(encoded) if spec == "1" else encoded.body
    if output is None:
        click.echo(body.decode())
        return
    with click.open_file(output, "wb", atomic=True) as out:
        out.write(body)
    _say(f"snapshot of {environment} written to {output}")


@main.command("list-sdk-keys")
@click.option("--environment", required=True)
@pass_state
def list_sdk_keys(state: AppState, environment: str) -> None:
    """List an environment's SDK keys: id, prefix, created, last used, revoked."""
    from flagsvc.services import credentials

    with state.db.read() as session:
        keys = credentials.list_sdk_keys(session, environment)
    for key in keys:
        used = key.last_used_at.isoformat() if key.last_used_at else "never used"
        revoked = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "live"
        click.echo(
            f"{key.id}\t{key.prefix}…\tcreated {key.created_at.isoformat()}\t{used}\t{revoked}"
        )


@main.command("revoke-sdk-key")
@click.option("--environment", required=True)
@click.option("--id", "key_id", required=True, type=int, help="From list-sdk-keys or the API.")
@pass_state
def revoke_sdk_key(state: AppState, environment: str, key_id: int) -> None:
    """Revoke an SDK key; with REDIS_URL every instance refuses it within a second."""
    from flagsvc.services import credentials

    with state.db.write() as session:
        key = credentials.revoke_sdk_key(session, _change(state), environment, key_id)
    state.revocations.announce(key.id)
    _say(f"SDK key {key.id} ({key.prefix}…) revoked in {environment}")


@main.group("audit")
def audit_group() -> None:
    """Audit log commands."""


@audit_group.command("verify")
@click.option(
    "--head",
    "kept",
    metavar="SEQ:HASH",
    help="A head kept earlier (flagsvc audit head; from the metrics: printf '%d:%013x' S V).",
)
@pass_state
def audit_verify(state: AppState, kept: str | None) -> None:
    """Recompute the whole hash chain; exit 1 and name the first broken link if it fails."""
    from flagsvc.services import audit_verification

    if kept is None:
        report = audit_verification.verify(state.db, state.audit_keys, state.clock(), full=True)
    else:
        try:
            head = audit_verification.KeptHead.parse(kept)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--head") from None
        with state.db.read() as session:
            report = audit_verification.verify_against(session, state.audit_keys, head)
    if report.valid:
        sealed = " (sealed with the audit key)" if state.audit_keys.keys else ""
        click.echo(f"audit chain valid: {report.events_checked} events{sealed}")
        return
    click.echo(
        f"audit chain BROKEN at event {report.first_broken_seq}: {report.reason} "
        f"({report.events_checked} events verified before it)"
    )
    sys.exit(1)


@audit_group.command("head")
@pass_state
def audit_head(state: AppState) -> None:
    """Print the newest event as SEQ:HASH, alone on stdout: keep it outside the database."""
    from flagsvc.services import audit

    with state.db.read() as session:
        head = audit.chain_head(session)
    click.echo(f"{head.seq}:{head.hash}")


def run(*args: Any) -> None:
    """Entry for tests: run the CLI in-process."""
    main.main(args=list(args), standalone_mode=False)
