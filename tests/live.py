"""Run a real flagsvc process (gunicorn, as deployed) for tests and benchmarks.

    service = start_service(database_url, redis_url, env={"FLAGSVC_STREAM_KEEPALIVE_SECONDS": "0.2"})
    service.url, service.admin_token, service.sdk_key("production")
    service.kill(); service.restart(); service.stop()

``start_service`` runs ``flagsvc init`` first (migrate, default environments, and an
admin token when the database has none; a new SQLite file gets a copy of what an
earlier ``init`` made, see ``initialise``), then ``flagsvc serve`` on a free port
(or ``port``) and waits until ``/healthz`` answers. The process runs in its own
process group so ``kill`` takes its workers with it, like a crashed host would.
Imports nothing from flagsvc: usable from SDK tests and from ``bench/``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

_PR_SET_PDEATHSIG = 1
_FLAGSVC = [sys.executable, "-c", "from flagsvc.cli import main; main()"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def flagsvc_command(env: Mapping[str, str], *args: str, timeout: float = 60.0) -> str:
    """Run a ``flagsvc`` command in ``env``; its stdout, stripped (raises if it fails)."""
    done = subprocess.run(
        [*_FLAGSVC, *args], env=env, capture_output=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"flagsvc {' '.join(args)} failed: {done.stderr.decode()[-2000:]}")
    return done.stdout.decode().strip()


class LiveService:
    """One running service process; ``.url`` is its base URL."""

    def __init__(
        self,
        database_url: str,
        redis_url: str | None = None,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        serve_args: Sequence[str] = (),
    ) -> None:
        self.database_url = database_url
        self.serve_args = list(serve_args)
        self.redis_url = redis_url
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.port_chosen_here = port is None
        self.env = _environment(database_url, redis_url, env or {})
        self.admin_token: str | None = None
        self.launched_at = 0  # where this launch's lines start in the log
        self.served = False  # became healthy once (a restart keeps its port)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="flagsvc-live-", suffix=".log")[1])

    def cli(self, *args: str, timeout: float = 60.0) -> str:
        """Run a ``flagsvc`` command against the same database; its stdout, stripped."""
        return flagsvc_command(self.env, *args, timeout=timeout)

    def sdk_key(self, environment: str = "production") -> str:
        """A new SDK key for ``environment`` (through the API when we hold an admin token)."""
        if self.admin_token is None or self.process is None:
            return self.cli("create-sdk-key", "--environment", environment)
        request = urllib.request.Request(
            f"{self.url}/api/v1/environments/{environment}/sdk-keys", data=b"{}", method="POST"
        )
        request.add_header("Authorization", f"Bearer {self.admin_token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.loads(response.read())["sdk_key"])

    def start(self, timeout: float = 30.0) -> LiveService:
        """Start serving and wait until ``/healthz`` answers."""
        self.launch()
        self.wait_healthy(timeout)
        return self

    def launch(self) -> None:
        """Start ``flagsvc serve`` without waiting for it (``wait_healthy`` does)."""
        self.launched_at = self.log_path.stat().st_size
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *_FLAGSVC,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *self.serve_args,
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful stop (SIGTERM), then SIGKILL if it lingers."""
        self._signal(signal.SIGTERM)
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, no goodbye to clients."""
        self._signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)
        self.process = None

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The service unresponsive (SIGSTOP): connections are accepted by the kernel,
        nothing is ever answered; SIGCONT on exit."""
        self._signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self._signal(signal.SIGCONT)

    def restart(self, timeout: float = 30.0) -> LiveService:
        """Stop (if running) and start again on the same port."""
        if self.process is not None:
            self.stop()
        return self.start(timeout)

    def logs(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, token: str | None = None) -> tuple[int, bytes]:
        """A plain GET (no client library): status and body."""
        request = urllib.request.Request(self.url + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def __enter__(self) -> LiveService:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def _signal(self, signum: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)  # the group this object started

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Return once this process listens and ``/healthz`` answers 200; raise (with the
        log) if the process exits or ``timeout`` passes.

        A port ``free_port`` chose can be taken by another test process's service before
        gunicorn binds it: that one would answer ``/healthz`` (and refuse this service's
        tokens), so only gunicorn's own "Listening at" line counts, and a launch that
        found its port taken starts again on another.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                moves = self.port_chosen_here and not self.served
                if moves and "Connection in use" in self._launch_log():
                    self.port = free_port()
                    self.url = f"http://127.0.0.1:{self.port}"
                    self.launch()
                    continue
                raise RuntimeError(
                    f"flagsvc exited ({self.process.returncode}):\n{self.logs()[-3000:]}"
                )
            try:
                listening = f"Listening at: {self.url} " in self._launch_log()
                if listening and self.get("/healthz")[0] == 200:
                    self.served = True
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"flagsvc did not become healthy in {timeout}s:\n{self.logs()[-3000:]}")

    def _launch_log(self) -> str:
        """What the process wrote since its latest launch."""
        with self.log_path.open("rb") as log:
            log.seek(self.launched_at)
            return log.read().decode(errors="replace")


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Linux: send ``signum`` to this (child) process when the process that started it dies.

    A ``preexec_fn``. A test run killed mid-way (a timeout, a crashed xdist worker) skips
    its fixture teardown; without this its servers would outlive it, holding ports and
    databases.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)


def _environment(
    database_url: str, redis_url: str | None, extra: Mapping[str, str]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLAGSVC_", "REDIS_URL"))}
    env.update({"DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"})
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


_INITIALISED: dict[tuple[tuple[str, str], ...], tuple[Path, str | None]] = {}
"""Per settings ``init`` reads (``init_settings``): a SQLite file ``flagsvc init`` made in
this process, and the first admin token it printed."""


_NOT_READ_BY_INIT = frozenset(
    {
        "FLAGSVC_ACCESS_LOG",
        "FLAGSVC_AUTH_FAILURE_LIMIT",
        "FLAGSVC_AUTH_FAILURE_WINDOW_SECONDS",
        "FLAGSVC_BIND",
        "FLAGSVC_DB_POOL_SIZE",
        "FLAGSVC_DB_POOL_TIMEOUT_SECONDS",
        "FLAGSVC_ENROLL_LIMIT",
        "FLAGSVC_ENROLL_WINDOW_SECONDS",
        "FLAGSVC_HEAD_POLL_SECONDS",
        "FLAGSVC_LOG_FORMAT",
        "FLAGSVC_LOG_LEVEL",
        "FLAGSVC_MAX_BODY_BYTES",
        "FLAGSVC_MAX_MEMBERS_PER_REQUEST",
        "FLAGSVC_MAX_STREAMS",
        "FLAGSVC_MAX_STREAMS_PER_ADDRESS",
        "FLAGSVC_MAX_STREAMS_PER_KEY",
        "FLAGSVC_PROXY_HOPS",
        "FLAGSVC_REACH_WARNING_PERCENT",
        "FLAGSVC_STREAM_KEEPALIVE_SECONDS",
        "FLAGSVC_THREADS",
        "FLAGSVC_WEBHOOK_ALLOW_PRIVATE",
        "FLAGSVC_WEBHOOK_TIMEOUT_SECONDS",
        "FLAGSVC_WORKERS",
        "FLAGSVC_WORKER_CLASS",
        "FLAGSVC_WORKER_CONNECTIONS",
    }
)
"""Settings of serving (limits, workers, logs) that leave what ``init`` writes as it is:
services differing only in these share one ``init``'s copy (``initialise``)."""


def initialise(service: LiveService) -> str | None:
    """``flagsvc init`` on the service's database; the first admin token, if it made one.

    A SQLite file that does not exist yet gets a copy of one ``init`` made earlier in
    this process under the same environment, first admin token and all, as if ``init``
    had run there: an interpreter importing flagsvc and running every migration costs
    seconds, and live tests start dozens of services on fresh files.
    """
    fresh = _fresh_sqlite_file(service.database_url)
    if fresh is None:
        return service.cli("init") or None
    key = init_settings(service.env)
    if key not in _INITIALISED:
        template = Path(tempfile.mkdtemp(prefix="flagsvc-init-")) / "flagsvc.db"
        env = {**service.env, "DATABASE_URL": f"sqlite:///{template}"}
        _INITIALISED[key] = (template, flagsvc_command(env, "init") or None)
    template, token = _INITIALISED[key]
    with (
        contextlib.closing(sqlite3.connect(template)) as source,
        contextlib.closing(sqlite3.connect(fresh)) as copy,
    ):
        source.backup(copy)  # WAL and all, unlike copying the file
    return token


def init_settings(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The part of ``env`` that can change what ``flagsvc init`` writes.

    flagsvc reads ``DATABASE_URL`` (the copy's own, not the template's), ``REDIS_URL``
    (nothing ``init`` writes depends on it) and ``FLAGSVC_*`` (``flagsvc.config``), less
    ``_NOT_READ_BY_INIT``; the rest of a test's environment (``PATH``, and pytest's
    ``PYTEST_CURRENT_TEST``, which names the running test and so differs in every one)
    writes nothing, and keying on it gave every test an ``init`` of its own.
    """
    return tuple(
        sorted(
            (name, value)
            for name, value in env.items()
            if name.startswith("FLAGSVC_") and name not in _NOT_READ_BY_INIT
        )
    )


def _fresh_sqlite_file(database_url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL when it does not exist yet, else None."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix) or "?" in database_url:
        return None
    path = Path(database_url.removeprefix(prefix))
    return None if path.name in ("", ":memory:") or path.exists() else path


def start_service(
    database_url: str,
    redis_url: str | None = None,
    port: int | None = None,
    *,
    env: Mapping[str, str] | None = None,
    init: bool = True,
    serve_args: Sequence[str] = (),
) -> LiveService:
    """Migrate (``flagsvc init``) and start a service; ``admin_token`` is set on a fresh database.

    ``env`` adds environment variables (``FLAGSVC_*`` settings); ``serve_args`` adds
    ``flagsvc serve`` flags such as ``--threads 1100``.
    """
    service = LiveService(database_url, redis_url, port, env, serve_args)
    if init:
        service.admin_token = initialise(service)
    return service.start()


class Services(list[LiveService]):
    """Instances started together; ``with`` stops them all, side by side."""

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM every instance first, then wait for each (one shutdown's wait in all)."""
        for service in self:
            service._signal(signal.SIGTERM)
        for service in self:
            service.stop()


def start_services(
    count: int,
    database_url: str,
    redis_url: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    serve_args: Sequence[str] = (),
) -> Services:
    """``count`` instances on one database, like ``start_service`` called ``count`` times.

    ``flagsvc init`` runs once (the first instance holds the admin token, as it would
    have), then every ``serve`` is launched before waiting for any: an instance's start
    is mostly interpreter and app start-up, which the others' need not queue behind.
    """
    services = Services(
        LiveService(database_url, redis_url, None, env, serve_args) for _ in range(count)
    )
    services[0].admin_token = initialise(services[0])
    try:
        for service in services:
            service.launch()
        for service in services:
            service.wait_healthy()
    except BaseException:
        for service in services:
            service.kill()
        raise
    return services


NGINX_CONF = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf"


class Balancer:
    """The shipped ``deploy/nginx.conf`` in front of local instances, nginx as a child.

    Only what Docker provides is replaced: the ``api`` service name (its DNS resolver)
    by the instances' addresses, the listen port by a free one. Runs in the foreground
    (``daemon off``) with a temporary prefix, so stopping it is killing a child.
    """

    def __init__(self, ports: Sequence[int], port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = Path(tempfile.mkdtemp(prefix="flagsvc-nginx-"))
        servers = "".join(f"server 127.0.0.1:{p};\n        " for p in ports)
        text = NGINX_CONF.read_text()
        text = text.replace("resolver 127.0.0.11 valid=5s ipv6=off;", "")
        text = text.replace("server api:8000 resolve;  # nginx >= 1.27.3", servers.rstrip())
        text = text.replace("listen 8080;", f"listen 127.0.0.1:{self.port};")
        text = text.replace("access_log /dev/stdout;", "access_log off;")
        text = text.replace("worker_processes auto;", "worker_processes 1;")
        text = text.replace("worker_rlimit_nofile 65536;", "")
        self.config = self.prefix / "nginx.conf"
        self.config.write_text(text)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> Balancer:
        """Start nginx and wait until it answers."""
        nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
        if nginx is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        pid = f"pid {self.prefix}/nginx.pid; daemon off;"
        with (self.prefix / "nginx.log").open("ab") as log:
            self.process = subprocess.Popen(
                [nginx, "-c", str(self.config), "-p", str(self.prefix), "-g", pid],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                return self
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not start: {(self.prefix / 'nginx.log').read_text()}")

    def stop(self) -> None:
        """Stop nginx (SIGQUIT would wait for every open stream: TERM ends them)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def __enter__(self) -> Balancer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
