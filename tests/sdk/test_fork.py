"""A client created before ``fork()`` keeps working in every child, against a real service.

The deployments Python teams run: gunicorn with ``--preload`` (the app, and so the
client, is imported once in the master, then the workers are forked) with sync, gthread
and gevent workers; uWSGI with and without ``lazy-apps`` (it forks in C, without
``os.fork()``); Celery's prefork pool; and ``multiprocessing`` with the fork start
method. In each, every
worker must see a change within 5 s, its evaluation counts must reach the service, and
two workers must never share a connection (``enroll`` from both at once, all accepted).

The service runs on a SQLite file in its own environment ``forks``, so the evaluation
counter of ``/metrics`` counts only these workers' evaluations.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from typing import Protocol

import httpx
import pytest
from flagsvc_sdk import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.live import LiveService
from tests.live import die_with_parent
from tests.live import free_port
from tests.live import start_service
from tests.live_helpers import admin_client
from tests.live_helpers import create_cohort
from tests.live_helpers import create_flag
from tests.live_helpers import set_cohorts
from tests.live_helpers import state_path
from tests.live_helpers import wait_for

ENVIRONMENT = "forks"
FLAG = "fork-flag"
COHORT = "fork-beta"
WORKERS = 2
CHANGE_SEEN_WITHIN = 5.0  # seconds: the bound for every worker
STOPPED_WITHIN = 5.0  # seconds from SIGTERM until the server and all its workers exited

APP = textwrap.dedent(
    """
    import json
    import os
    from urllib.parse import parse_qs

    from flagsvc_sdk import Client

    # Created at import: with --preload that is in the master, before the fork.
    client = Client(
        os.environ["FLAGS_URL"], os.environ["FLAGS_KEY"], poll_interval=1, metrics_interval=0.5
    )
    client.wait_until_ready(10)


    def app(environ, start_response):
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if environ["PATH_INFO"] == "/enroll":
            answer = {"ok": client.enroll(os.environ["FLAGS_COHORT"], {"key": query["user"][0]})}
        else:
            on = client.is_enabled(os.environ["FLAGS_FLAG"], {"key": "user-1"})
            answer = {"pid": os.getpid(), "version": client.version, "on": on}
        body = json.dumps(answer).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    """
)


@dataclass
class Live:
    service: LiveService
    admin: httpx.Client
    sdk_key: str

    def kill_switch(self, killed: bool) -> int:
        """Kill or resume the flag; the snapshot version the change produced."""
        response = self.admin.post(
            f"{state_path(FLAG, ENVIRONMENT)}/{'kill' if killed else 'resume'}"
        )
        assert response.status_code == 200, response.text
        status, body = self.service.get("/sdk/v1/snapshot", self.sdk_key)
        assert status == 200
        return int(json.loads(body)["version"])

    def evaluations_counted(self) -> float:
        """The service's count of evaluations SDKs reported for the environment."""
        status, body = self.service.get("/metrics")
        assert status == 200
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                if sample.name == "flagsvc_sdk_evaluations_total" and sample.labels == {
                    "environment": ENVIRONMENT
                }:
                    return sample.value
        return 0.0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    database = tmp_path_factory.mktemp("fork") / "flagsvc.db"
    service = start_service(f"sqlite:///{database}")
    try:
        admin = admin_client(service)
        created = admin.post(
            "/api/v1/environments", json={"key": ENVIRONMENT, "name": "Forks", "gated": False}
        )
        assert created.status_code == 201, created.text
        create_flag(admin, FLAG, environment=ENVIRONMENT)
        create_cohort(admin, COHORT, opt_in=True)
        set_cohorts(admin, FLAG, ENVIRONMENT, [COHORT])  # an SDK key enrols only where it reaches
        yield Live(service, admin, service.sdk_key(ENVIRONMENT))
        admin.close()
    finally:
        service.stop()


@pytest.fixture
def resumed(live: Live) -> Live:
    live.kill_switch(False)
    return live


def spawn(
    argv: list[str], folder: Path, live: Live, log: Path, **extra: str
) -> subprocess.Popen[bytes]:
    """Start a pre-forking host of the app in ``folder``, told where the service is, its
    output in ``log``; in its own process group so stopping it ends the workers too, even
    a hung one, and dying with the test if the test dies."""
    env = {
        **os.environ,
        "FLAGS_URL": live.service.url,
        "FLAGS_KEY": live.sdk_key,
        "FLAGS_FLAG": FLAG,
        "FLAGS_COHORT": COHORT,
        "PYTHONPATH": str(folder),
        **extra,
    }
    with log.open("wb") as output:
        return subprocess.Popen(
            argv,
            cwd=folder,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
            process_group=0,
        )


# --- gunicorn --preload, uWSGI ---------------------------------------------------------


class WsgiServer:
    """A pre-forking server running :data:`APP` (plus ``extra`` lines) with ``WORKERS``
    workers, started with ``argv`` (the app module is ``flags_app`` in ``folder``)."""

    def __init__(
        self, live: Live, folder: Path, argv: list[str], port: int, extra: str = ""
    ) -> None:
        (folder / "flags_app.py").write_text(APP + extra)
        self.url = f"http://127.0.0.1:{port}"
        self.flags_asked: list[None] = []  # appended from several threads
        self.log = folder / "server.log"
        self.stopped_in = float("inf")  # seconds stop() took
        self.process = spawn(argv, folder, live, self.log)

    @classmethod
    def gunicorn(cls, live: Live, folder: Path, worker_class: str) -> WsgiServer:
        """``gunicorn --preload`` with workers of ``worker_class``."""
        port = free_port()
        argv = [sys.executable, "-m", "gunicorn", "--preload", "--workers", str(WORKERS)]
        argv += ["--worker-class", worker_class, "--bind", f"127.0.0.1:{port}"]
        argv += ["--no-control-socket"]  # one fixed path per user would collide
        argv += ["--threads", "4"] if worker_class == "gthread" else []
        return cls(live, folder, [*argv, "flags_app:app"], port)

    @classmethod
    def uwsgi(cls, live: Live, folder: Path, options: list[str], extra: str = "") -> WsgiServer:
        """uWSGI with a master, serving HTTP from its workers, plus ``options``."""
        port = free_port()
        uwsgi = Path(sys.executable).with_name("uwsgi")
        argv = [str(uwsgi), "--master", "--processes", str(WORKERS), "--need-app"]
        argv += ["--http-socket", f"127.0.0.1:{port}", "--die-on-term", "--enable-threads"]
        argv += ["--virtualenv", sys.prefix, "--pythonpath", str(folder)]
        return cls(live, folder, [*argv, *options, "--module", "flags_app:app"], port, extra)

    def ask(self, path: str = "/flag") -> dict[str, object]:
        """One request on a new connection (so the workers share them out)."""
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            answer: dict[str, object] = json.loads(response.read())
        if path == "/flag":  # each answer evaluated the flag once
            self.flags_asked.append(None)
        return answer

    @property
    def evaluated(self) -> int:
        return len(self.flags_asked)

    def ask_at_once(self, paths: list[str]) -> list[dict[str, object]]:
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(self.ask, paths))

    def worker_pids(self, timeout: float = 30.0) -> set[object]:
        """Ask until every worker answered once; their pids."""
        pids: set[object] = set()
        deadline = time.monotonic() + timeout
        while len(pids) < WORKERS:
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            try:
                pids.add(self.ask()["pid"])
            except OSError:
                time.sleep(0.1)  # still starting
        return pids

    def stop(self) -> None:
        """SIGTERM to the whole group (as systemd does); ``stopped_in`` says how long the
        server took to exit with its workers (a uWSGI master waits for every worker)."""
        started = time.monotonic()
        os.killpg(self.process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(15)
        self.stopped_in = time.monotonic() - started
        with suppress(ProcessLookupError):  # workers the master left behind
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(5)

    def assert_stopped_at_once(self) -> None:
        """Every worker exited soon after SIGTERM (not at a SIGKILL after the wait)."""
        assert self.stopped_in < STOPPED_WITHIN, (self.stopped_in, self.log.read_text()[-3000:])


class Workers(Protocol):
    """What the checks need from a pool of workers sharing a client made before the fork."""

    log: Path

    @property
    def evaluated(self) -> int:
        """How many flag evaluations :meth:`ask` asked for."""
        ...

    def ask(self, path: str = "/flag") -> dict[str, object]: ...

    def ask_at_once(self, paths: list[str]) -> list[dict[str, object]]:
        """The answers to ``paths`` asked all at once (so that every worker takes some)."""
        ...

    def worker_pids(self, timeout: float = 30.0) -> set[object]: ...

    def stop(self) -> None: ...


def every_worker_sees_a_change_and_counts_arrive(live: Live, server: Workers) -> None:
    """The issue's checks on a running server: every worker answers from a change
    within 5 s, the service counts every evaluation, and enrolments from both workers at
    once each get their own answer."""
    counted_before = live.evaluations_counted()
    try:
        pids = server.worker_pids()
        # When the flag changes
        version = live.kill_switch(True)
        # Then every worker answers from the new version within 5 s
        fresh: set[object] = set()
        deadline = time.monotonic() + CHANGE_SEEN_WITHIN
        while fresh != pids:
            assert time.monotonic() < deadline, (fresh, pids, server.log.read_text()[-3000:])
            for answer in server.ask_at_once(["/flag"] * WORKERS):
                if answer["version"] == version:
                    assert answer["on"] is False
                    fresh.add(answer["pid"])
        # And the service counted every evaluation the workers made
        wait_for(lambda: live.evaluations_counted() - counted_before == server.evaluated)
        # And two workers enrolling at once each talk on their own connection
        answers = server.ask_at_once([f"/enroll?user=u{i}" for i in range(40)])
        assert all(answer["ok"] is True for answer in answers), server.log.read_text()[-3000:]
        members = live.admin.get(f"/api/v1/cohorts/{COHORT}/members", params={"limit": 500})
        assert {f"u{i}" for i in range(40)} <= {m["user_key"] for m in members.json()["items"]}
        assert "illegal status line" not in server.log.read_text()
    finally:
        server.stop()


@pytest.mark.parametrize("worker_class", ["sync", "gthread", "gevent"])
def test_gunicorn_preload__change__every_worker_sees_it_and_counts_arrive(
    resumed: Live, tmp_path: Path, worker_class: str
) -> None:
    # Given the client created in the master (--preload), then the workers forked
    server = WsgiServer.gunicorn(resumed, tmp_path, worker_class)
    every_worker_sees_a_change_and_counts_arrive(resumed, server)


UWSGI_POSTFORK = textwrap.dedent(
    """
    from uwsgidecorators import postfork

    postfork(client.postfork)  # the explicit call, as documented
    """
)


@pytest.mark.parametrize(
    ("options", "extra"),
    [
        (["--lazy-apps"], ""),  # each worker imports the app itself
        ([], ""),  # the app (and the client) loaded in the master, workers forked in C
        (["--py-call-osafterfork"], ""),  # the same, with Python's fork hooks run
        ([], UWSGI_POSTFORK),  # the same, with @postfork calling client.postfork()
    ],
    ids=["lazy-apps", "preloaded", "py-call-osafterfork", "explicit-postfork"],
)
def test_uwsgi__change__every_worker_sees_it_and_counts_arrive(
    resumed: Live, tmp_path: Path, options: list[str], extra: str
) -> None:
    # Given uWSGI with or without lazy-apps (uWSGI forks without os.fork(): Python's
    # fork hooks run only with py-call-osafterfork)
    server = WsgiServer.uwsgi(resumed, tmp_path, options, extra)
    every_worker_sees_a_change_and_counts_arrive(resumed, server)
    # And on SIGTERM every worker exits at once (the client's threads take no signal)
    server.assert_stopped_at_once()


def test_uwsgi__stopped_again_and_again__every_worker_exits_at_once(
    resumed: Live, tmp_path: Path
) -> None:
    # Given uWSGI workers running the client's threads, stopped as systemd stops a unit:
    # SIGTERM to every process, then the master's SIGINT to each worker. A signal the
    # kernel handed to one of the client's threads ran uWSGI's exit there, which waited
    # for the worker's main thread forever (before the fix this test failed 3 runs in 3;
    # without the enrolments and their fetches, 1 in 3)
    for attempt in range(3):
        folder = tmp_path / str(attempt)
        folder.mkdir()
        server = WsgiServer.uwsgi(resumed, folder, [])
        try:
            server.worker_pids()  # each worker starts the client's threads on a request
            server.ask_at_once([f"/enroll?user=s{attempt}-{i}" for i in range(8)])
            time.sleep(0.5)
        finally:
            server.stop()
        # Then the master and both workers are gone within moments, every time
        server.assert_stopped_at_once()


# --- Celery prefork ----------------------------------------------------------------------

TASKS = textwrap.dedent(
    """
    import os
    import time

    from celery import Celery
    from flagsvc_sdk import Client

    app = Celery("flags_tasks", broker=os.environ["CELERY_URL"], backend=os.environ["CELERY_URL"])

    # Created at import: in the worker's main process, before the pool forks its children.
    client = Client(
        os.environ["FLAGS_URL"], os.environ["FLAGS_KEY"], poll_interval=1, metrics_interval=0.5
    )
    client.wait_until_ready(10)


    @app.task(name="flag")
    def flag():
        time.sleep(0.05)  # long enough that tasks sent together go to different children
        on = client.is_enabled(os.environ["FLAGS_FLAG"], {"key": "user-1"})
        return {"pid": os.getpid(), "version": client.version, "on": on}


    @app.task(name="enroll")
    def enroll(user):
        return {"ok": client.enroll(os.environ["FLAGS_COHORT"], {"key": user})}
    """
)


class CeleryWorker:
    """``celery worker --pool prefork`` running :data:`TASKS` with ``WORKERS`` children,
    on its own queue of the test's Redis; :meth:`ask` runs a task and waits for it."""

    def __init__(self, live: Live, folder: Path, redis_url: str) -> None:
        from celery import Celery

        (folder / "flags_tasks.py").write_text(TASKS)
        self.queue = f"flags-{os.getpid()}-{time.monotonic_ns()}"
        self.app = Celery("caller", broker=redis_url, backend=redis_url)
        self.flags_asked: list[None] = []
        argv = [sys.executable, "-m", "celery", "-A", "flags_tasks", "worker", "--pool", "prefork"]
        argv += ["--concurrency", str(WORKERS), "-O", "fair", "--prefetch-multiplier", "1"]
        argv += ["-Q", self.queue, "--without-gossip", "--without-mingle", "-l", "info"]
        self.log = folder / "celery.log"
        self.process = spawn(argv, folder, live, self.log, CELERY_URL=redis_url)

    def _send(self, path: str) -> Any:
        """Send the task ``path`` names (``/flag``, or ``/enroll?user=u``); its result."""
        if path.startswith("/enroll"):
            return self.app.send_task("enroll", args=[path.split("=", 1)[1]], queue=self.queue)
        self.flags_asked.append(None)
        return self.app.send_task("flag", queue=self.queue)

    def ask(self, path: str = "/flag") -> dict[str, object]:
        return self.ask_at_once([path])[0]

    def ask_at_once(self, paths: list[str]) -> list[dict[str, object]]:
        """Send every task first, then wait for each (results are read on one thread:
        Celery's result consumer is not shared across threads)."""
        results = [self._send(path) for path in paths]
        return [result.get(timeout=20) for result in results]

    @property
    def evaluated(self) -> int:
        return len(self.flags_asked)

    def worker_pids(self, timeout: float = 30.0) -> set[object]:
        """Run tasks until every child answered one (sent together, so both take one)."""
        pids: set[object] = set()
        deadline = time.monotonic() + timeout
        while len(pids) < WORKERS:
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            pids.update(answer["pid"] for answer in self.ask_at_once(["/flag"] * WORKERS))
        return pids

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(15)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(5)
        self.app.backend.result_consumer.stop()  # the caller's sockets, or pytest warns
        self.app.backend.client.connection_pool.disconnect()
        self.app.pool.force_close_all()
        self.app.close()


def test_celery_prefork__change__every_child_sees_it_and_counts_arrive(
    resumed: Live, tmp_path: Path, redis_url: str
) -> None:
    # Given the client created in the worker's main process, then its pool forked
    server = CeleryWorker(resumed, tmp_path, redis_url)
    every_worker_sees_a_change_and_counts_arrive(resumed, server)


# --- multiprocessing (fork) ------------------------------------------------------------

ChildMain = Callable[[Client, Connection], None]


@contextmanager
def forked(live: Live, child_main: ChildMain) -> Iterator[tuple[Client, Connection]]:
    """A client streaming in this process, and a child forked with it running
    ``child_main(client, connection)``; the parent's end of the connection."""
    client = Client(live.service.url, live.sdk_key, poll_interval=1, metrics_interval=0.5)
    try:
        assert client.wait_until_ready(10)
        parent, child_end = multiprocessing.Pipe()
        child = multiprocessing.get_context("fork").Process(
            target=child_main, args=(client, child_end)
        )
        child.start()
        try:
            yield client, parent
            child.join(10)
            assert child.exitcode == 0
        finally:
            if child.is_alive():
                child.kill()
    finally:
        client.close()


def _wait_for_version(client: Client, version: int) -> None:
    deadline = time.monotonic() + CHANGE_SEEN_WITHIN
    while client.version != version and time.monotonic() < deadline:
        time.sleep(0.02)


def _follow_in_child(client: Client, conn: Connection) -> None:
    """In the forked child: evaluate, then wait for the version the parent names."""
    for _ in range(25):
        client.is_enabled(FLAG, {"key": "user-1"})
    conn.send(("evaluated", os.getpid(), 25))
    _wait_for_version(client, conn.recv())
    conn.send(("version", client.version, client.is_enabled(FLAG, {"key": "user-1"})))
    conn.recv()  # the parent saw the counts: flush on close, then exit
    client.close()


def test_multiprocessing_fork__child__follows_changes_and_reports_counts(resumed: Live) -> None:
    # Given a client that streams in the parent, then a forked child using it
    counted_before = resumed.evaluations_counted()
    with forked(resumed, _follow_in_child) as (client, child):
        kind, _, evaluations = child.recv()
        assert kind == "evaluated"
        # When the flag changes
        version = resumed.kill_switch(True)
        child.send(version)
        # Then the child sees it, and its evaluations reach the service
        assert child.poll(CHANGE_SEEN_WITHIN + 5)
        assert child.recv() == ("version", version, False)
        wait_for(lambda: resumed.evaluations_counted() - counted_before >= evaluations + 1)
        child.send("done")
        # And the parent kept following too
        wait_for(lambda: client.version == version)


def _postfork_in_child(client: Client, conn: Connection) -> None:
    """In the forked child: ``postfork()`` first, then report the SDK's threads."""
    client.postfork()
    time.sleep(0.5)
    conn.send(sorted(t.name for t in threading.enumerate() if t.name.startswith("flagsvc")))
    _wait_for_version(client, conn.recv())
    conn.send(client.version)


def test_postfork__explicit_in_the_child__threads_restart_before_any_evaluation(
    resumed: Live,
) -> None:
    # (uWSGI's @postfork, Celery's worker_process_init: the documented explicit call)
    with forked(resumed, _postfork_in_child) as (_, child):
        assert child.poll(10)
        assert child.recv() == ["flagsvc-metrics", "flagsvc-stream", "flagsvc-updater"]
        version = resumed.kill_switch(True)
        child.send(version)
        assert child.poll(CHANGE_SEEN_WITHIN + 5)
        assert child.recv() == version
