"""Throwaway PostgreSQL and Redis servers that fault tests may stop and start at will.

    postgres = PostgresServer.create(5433)       # initdb in a temp dir, then started
    url = postgres.create_database("faults_1")   # postgresql://postgres@127.0.0.1:5433/faults_1
    postgres.stop(); postgres.start()            # an outage, then the database is back
    redis = RedisServer(6390).start(); redis.stop(); redis.start()

The shared servers (5432, 6379) serve every other engineer and test run: breaking one
of them would break their work, so faults happen only to these private ones. Both run
as direct child processes (no ``pg_ctl`` daemon) that die with the test process
(``die_with_parent``). ``initdb`` and ``postgres`` refuse to run as root: as root
they run as the ``postgres`` OS user, which then owns the temporary directory.
Neither class imports flagsvc.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO
from typing import Any

import psycopg
import redis
from psycopg import sql

from tests.conftest import worker_index
from tests.live import die_with_parent
from tests.live import free_port

POSTGRES_PORT = 5433
REDIS_PORT = 6390
_START_TIMEOUT = 20.0


class ServerUnavailableError(Exception):
    """This machine cannot run the server (missing binary, port taken): the reason."""


def postgres_bindir() -> Path:
    """Where ``initdb`` and ``postgres`` live: PATH, ``pg_config --bindir``, or Debian's
    ``/usr/lib/postgresql/<newest>/bin`` (Debian keeps them off PATH)."""
    candidates = []
    if found := shutil.which("initdb"):
        candidates.append(Path(found).parent)
    if pg_config := shutil.which("pg_config"):
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(done.stdout.strip()))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major_version, reverse=True)
    candidates += [Path(path) for path in versions]
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    raise ServerUnavailableError(
        "no initdb/postgres binaries (PATH, pg_config, /usr/lib/postgresql/*/bin)"
    )


def _major_version(bindir: str) -> int:
    version = Path(bindir).parent.name
    return int(version) if version.isdigit() else 0


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _ensure_free(port: int) -> None:
    if _listening(port):
        raise ServerUnavailableError(f"port {port} is already in use (a leftover test server?)")


def pick_port(preferred: int) -> int:
    """``preferred`` moved up by the xdist worker's number (``gw2``: +2) when free, else
    any free port: a second test run on the same machine (or a leftover server) must not
    turn into a failure; nobody else needs the number.

    Two workers that start their servers at the same moment would otherwise both find
    ``preferred`` free, and the second to bind would fail (a skip, and in CI a failure).
    """
    port = preferred + worker_index()
    return free_port() if _listening(port) else port


class _ChildServer:
    """One server process: started, stopped with ``stop_signal``, started again."""

    stop_signal = signal.SIGTERM

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _spawn(self, argv: list[str], **options: Any) -> None:
        _ensure_free(self.port)
        log: IO[bytes]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=functools.partial(die_with_parent, self.stop_signal),
                **options,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{argv[0]} did not start:\n{self.logs()[-2000:]}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server (its clients see their connections close) and wait for it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class PostgresServer(_ChildServer):
    """A private PostgreSQL cluster; stopping it is PostgreSQL's "fast" shutdown (SIGINT):
    open transactions roll back and every client connection is closed."""

    stop_signal = signal.SIGINT

    def __init__(self, port: int, bindir: Path, directory: Path) -> None:
        super().__init__(port, directory / "postgres.log")
        self.bindir = bindir
        self.directory = directory
        self.data = directory / "data"

    @classmethod
    def create(cls, port: int = POSTGRES_PORT) -> PostgresServer:
        """initdb a new cluster in a temporary directory and start it.

        :raise ServerUnavailableError: no binaries, no ``postgres`` user to run them as root, or
            the port is taken.
        """
        bindir = postgres_bindir()
        port = pick_port(port)
        directory = Path(tempfile.mkdtemp(prefix="flagsvc-faults-pg-"))
        server = cls(port, bindir, directory)
        try:
            _chown_to_runner(directory)
            initdb = [str(bindir / "initdb"), "-D", str(server.data), "-U", "postgres"]
            server._run_as_owner([*initdb, "--auth=trust", "-E", "UTF8", "--no-sync"])
            return server.start()
        except BaseException:
            server.destroy()
            raise

    def start(self) -> PostgresServer:
        """Start (or start again) on the same data directory; returns when it accepts."""
        settings = ["listen_addresses=127.0.0.1", "fsync=off", "max_connections=200"]
        argv = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        argv += ["-k", str(self.directory)]
        for setting in settings:
            argv += ["-c", setting]
        self._spawn(argv, cwd=self.directory, **_runner_options())
        return self

    def url(self, database: str = "postgres") -> str:
        """The URL of ``database`` on this server (trust auth, user postgres)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name`` (a fresh one per test); its URL."""
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def destroy(self) -> None:
        """Stop and delete the cluster."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _answers(self) -> bool:
        try:
            psycopg.connect(self._dsn("postgres"), connect_timeout=1).close()
        except psycopg.OperationalError:
            return False
        return True

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def _run_as_owner(self, argv: list[str]) -> None:
        done = subprocess.run(
            argv, cwd=self.directory, capture_output=True, check=False, **_runner_options()
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr.decode()[-2000:]}")


def _runner_options() -> dict[str, Any]:
    """subprocess options that drop root to the ``postgres`` user (nothing otherwise)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def _chown_to_runner(directory: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        raise ServerUnavailableError(
            "running as root and there is no 'postgres' user to run initdb"
        ) from None
    os.chown(directory, account.pw_uid, account.pw_gid)


class RedisServer(_ChildServer):
    """A private Redis without persistence: a restart comes back empty, like a new node."""

    def __init__(self, port: int = REDIS_PORT) -> None:
        log = Path(tempfile.mkstemp(prefix="flagsvc-faults-redis-", suffix=".log")[1])
        super().__init__(pick_port(port), log)
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise ServerUnavailableError("redis-server is not on PATH")

    def start(self) -> RedisServer:
        """Start (or start again) on the same port; returns when it answers PING."""
        assert self.binary is not None
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no"]
        self._spawn(argv)
        return self

    def url(self, database: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def client(self) -> redis.Redis:
        """A client for inspecting the server (PUBSUB NUMSUB and the like)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def destroy(self) -> None:
        """Stop and delete the log."""
        self.stop()
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def _answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False
