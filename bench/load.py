"""Mixed load: SDK polls, evaluate calls, admin writes and 1,000 open streams, for minutes.

    .venv/bin/python bench/load.py [--instances 1|2] [--duration 180] [--streams 1000]
                                   [--connections 24] [--writes-per-second 3]
                                   [--full-fetches-per-second 4] [--workers 2] [--timeout 5]

Without ``--instances`` it runs one instance, then two, each on a freshly seeded
database. Each run, on real gunicorn (``flagsvc serve``, gevent) with PostgreSQL and
Redis, at the same time and for ``--duration`` seconds:

- ``wrk`` (``bench/load.lua``), flat out: SDK snapshot revalidation (If-None-Match with
  the newest ETag: 304, and one 200 per connection after each change) on two thirds of
  ``--connections``, ``POST /sdk/v1/evaluate`` of 10 flags for random users on the rest;
- ``wrk``, paced: full snapshot fetches (an SDK starting), ``--full-fetches-per-second``;
- admin writes from this process, paced at ``--writes-per-second`` and one at a time:
  stage moves (off <-> early access), kill and resume, and member adds to the
  10,000-member cohort, in turn; every one changes production's snapshot;
- ``--streams`` SSE streams held by a child process (raw asyncio sockets) that counts
  the ``change`` events each stream receives; at the end every stream must still be
  open and have heard the final version (a dropped or lagging stream is an error).

With two instances, each wrk thread, admin write and stream goes to the next instance
in turn (round-robin per connection: an SDK holds one connection to one instance), so
no load balancer sits in the path. ``--workers`` is the total number of gunicorn
workers on the machine, split over the instances (default 2: one per core), so both
runs spend the same CPU and differ only by the split.

The seeded production environment: 200 flags (off, early access with cohorts,
general at 25-74 % with exclusions, released), four cohorts (rules only, 50 members,
an opt-in one with 200, and one with 10,000 explicit members that 120 flags use, so its
members are in every snapshot).

Reported per request type and overall: requests, req/s, p50 / p99, errors (HTTP
status >= 400, connect / read / write errors, timeouts after ``--timeout`` s) and
their rate; streams held, dropped, lagging, change events delivered; the resident
memory of each instance's gunicorn master and workers (after seeding with the
streams open, peak, final). Baseline from the same run: a bare Flask ``GET /ping``
(``sdk_http:bare_app``) on as many instances and workers, under the same wrk
connections and Lua script overhead, just before the mix.

``BENCH_PG_SERVER`` (default ``postgresql://postgres@127.0.0.1:5432``): the database
``BENCH_LOAD_DATABASE`` (default ``flagsvc_bench_load``) is dropped and created.
``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``) is flushed. Needs ``wrk``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
from propagation import percentile  # noqa: E402
from propagation import summary  # noqa: E402
from propagation import worker_rss_mib  # noqa: E402
from sdk_http import serve_bare  # noqa: E402

from tests.live import LiveService  # noqa: E402
from tests.live import free_port  # noqa: E402

PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
DATABASE = os.environ.get("BENCH_LOAD_DATABASE", "flagsvc_bench_load")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
LUA = BENCH_DIR / "load.lua"
QUIET = {"FLAGSVC_ACCESS_LOG": "0"}
ONE_CLIENT_MANY_STREAMS = {
    "FLAGSVC_MAX_STREAMS_PER_KEY": "100000",
    "FLAGSVC_MAX_STREAMS_PER_ADDRESS": "100000",
}
"""Every stream comes from this machine with one SDK key: no fair share to keep here."""
ENVIRONMENT = "production"
FLAGS = 200
BIG_COHORT = "early-adopters"
BIG_COHORT_SIZE = 10_000
EVALUATE_FLAGS = 10
START_SECONDS = 180  # generous: on a busy machine gunicorn takes a while to boot workers
# percentiles wrk reports (load.lua) and the grid admin-write samples are read at
GRID = [float(p) for p in range(1, 97)] + [round(97 + step * 0.05, 2) for step in range(61)]
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})")
EVENT = re.compile(rb'event: (hello|change)\ndata: [^\n]*"version": (\d+)')
STARTED = time.monotonic()
ROW = "{:28} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7}"
LOG_PROBLEM = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b")  # text or JSON log lines


# --- seeding (through the admin API, as an operator would) -------------------------


@dataclass(frozen=True)
class Seeded:
    """What the load needs to know about the seeded production environment."""

    sdk_key: str
    flags: list[str]
    toggled: list[str]  # off: the writer moves them off <-> early access
    killable: list[str]  # released: the writer kills and resumes them
    snapshot_bytes: int


COHORTS: list[dict[str, Any]] = [
    {
        "key": "beta-testers",
        "name": "Beta",
        "rules": [{"attribute": "plan", "op": "in", "values": ["beta"]}],
    },
    {
        "key": "staff",
        "name": "Staff",
        "rules": [{"attribute": "plan", "op": "in", "values": ["staff"]}],
    },
    {"key": "preview", "name": "Preview programme", "opt_in": True},
    {"key": BIG_COHORT, "name": "Early adopters"},
]
MEMBERS = {
    "staff": [f"user-{n}" for n in range(19_950, 20_000)],
    "preview": [f"user-{n}" for n in range(15_000, 15_200)],
    BIG_COHORT: [f"user-{n}" for n in range(1, BIG_COHORT_SIZE + 1)],
}
# flag n's production state by n % 5: cohorts, then the stage move (None: stays off)
SHAPES: list[tuple[list[str], dict[str, Any] | None]] = [
    ([], None),
    ([BIG_COHORT, "beta-testers"], {"stage": "early_access"}),
    ([BIG_COHORT], {"stage": "general"}),  # rollout_percent added per flag
    ([BIG_COHORT, "staff"], {"stage": "released"}),
    (["staff", "preview"], {"stage": "early_access"}),
]


def fresh_database() -> str:
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    redis.Redis.from_url(REDIS_URL).flushdb()
    return f"{PG_SERVER}/{DATABASE}"


def seed(service: LiveService) -> Seeded:
    """200 flags and four cohorts in production, through the API (8 requests at a time)."""
    auth = {"Authorization": f"Bearer {service.admin_token}"}
    with httpx.Client(base_url=service.url, headers=auth, timeout=120) as api:
        objective = _created(
            api, "/api/v1/objectives", {"title": "Load", "period": "2026-Q4", "owner": "o"}
        )
        kr = _created(
            api,
            f"/api/v1/objectives/{objective['id']}/key-results",
            {"title": "K", "metric": "m", "baseline": 0, "target": 1, "unit": "u"},
        )
        for cohort in COHORTS:
            _created(api, "/api/v1/cohorts", cohort)
        for key, members in MEMBERS.items():
            _created(api, f"/api/v1/cohorts/{key}/members", {"add": members})
        keys = [f"load-{n:03d}" for n in range(FLAGS)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: _seed_flag(api, kr["id"], keys[n], n), range(FLAGS)))
        sdk_key = _created(api, f"/api/v1/environments/{ENVIRONMENT}/sdk-keys", {})["sdk_key"]
        sdk = {"Authorization": f"Bearer {sdk_key}"}
        size = len(api.get("/sdk/v1/snapshot", headers=sdk).content)
    return Seeded(sdk_key, keys, keys[0::5], keys[3::5], size)


def _created(api: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(path, json=body)
    response.raise_for_status()
    return dict(response.json())


def _seed_flag(api: httpx.Client, kr_id: int, key: str, n: int) -> None:
    values = {  # every other flag serves a JSON value, like a payload before
        "value_type": "object",
        "variations": [{"key": "on", "value": {"variant": "b", "limit": n}}],
        "on_variation": "on",
    }
    body = {"key": key, "name": key, "flow_item": "feature", "key_result_id": kr_id}
    _created(api, "/api/v1/flags", body | (values if n % 2 else {}))
    cohorts, move = SHAPES[n % len(SHAPES)]
    if move is None:
        return
    state = f"/api/v1/flags/{key}/environments/{ENVIRONMENT}"
    etag = _put(api, f"{state}/cohorts", {"cohorts": cohorts}, api.get(state).headers["ETag"])
    if move["stage"] == "general":
        move = {**move, "rollout_percent": 25 + n % 50}
        _put(api, f"{state}/exclusions", {"users": [f"user-{n * 7 + i}" for i in range(10)]}, etag)
    if move["stage"] in ("general", "released"):
        readiness = f"/api/v1/flags/{key}/readiness"
        items = [{"key": "docs", "label": "Docs", "required": False}]
        _put(api, readiness, {"items": items}, api.get(readiness).headers["ETag"])
    _created(api, f"{state}/stage", move)


def _put(api: httpx.Client, path: str, body: dict[str, Any], etag: str) -> str:
    response = api.put(path, json=body, headers={"If-Match": etag})
    response.raise_for_status()
    return response.headers["ETag"]


# --- measurements -------------------------------------------------------------------


@dataclass
class Figures:
    """One request type's (or the overall) results."""

    requests: int
    seconds: float
    percentiles: dict[float, float]  # percentile -> milliseconds
    errors: int
    detail: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def at(self, p: float) -> float:
        return self.percentiles.get(p, 0.0)


def wrk_figures(out: str) -> Figures:
    """Parse load.lua's LOAD-RESULT line."""
    line = next((li for li in out.splitlines() if li.startswith("LOAD-RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out[-2000:]}")
    data = json.loads(line.removeprefix("LOAD-RESULT "))
    kinds = ("connect", "read", "write", "timeout", "status")
    errors = sum(data[k] for k in kinds)
    detail = ", ".join(f"{k} {data[k]}" for k in kinds if data[k])
    statuses = " ".join(f"{code}: {count}" for code, count in sorted(data["statuses"].items()))
    return Figures(
        data["requests"],
        data["duration_us"] / 1e6,
        {float(p): us / 1000 for p, us in data["percentiles"].items()},
        errors,
        f"statuses {{{statuses}}}" + (f"; errors: {detail}" if detail else ""),
    )


def sample_figures(latencies: list[float], errors: list[str], seconds: float) -> Figures:
    """Figures from latencies (seconds) this process measured itself."""
    ms = [t * 1000 for t in latencies] or [0.0]
    grid = {p: percentile(ms, p) for p in GRID}
    detail = f"errors: {'; '.join(errors[:5])}" if errors else ""
    return Figures(len(latencies) + len(errors), seconds, grid, len(errors), detail)


def merged(parts: Sequence[Figures]) -> Figures:
    """Overall figures: requests summed; percentiles of the request-weighted mixture.

    Each part's latency distribution is known at the ``GRID`` percentiles, so the mix's
    CDF at x is the weighted sum of the parts' CDFs there (to the grid's resolution).
    """
    total = sum(p.requests for p in parts) or 1

    def cdf(x: float) -> float:
        return sum(
            p.requests * max((q for q, v in p.percentiles.items() if v <= x), default=0.0)
            for p in parts
        ) / (100 * total)

    values = sorted({v for p in parts for v in p.percentiles.values()})
    overall = {q: next((x for x in values if cdf(x) >= q / 100), values[-1]) for q in (50.0, 99.0)}
    seconds = max(p.seconds for p in parts)
    return Figures(sum(p.requests for p in parts), seconds, overall, sum(p.errors for p in parts))


def run_wrk(
    kind: str,
    targets: list[str],
    connections: int,
    args: argparse.Namespace,
    extra: dict[str, str] | None = None,
    seconds: int | None = None,
) -> subprocess.Popen[str]:
    """Start wrk with load.lua for one request type; one thread per instance."""
    threads = len(targets)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{max(connections, threads)}",
        f"-d{seconds or args.duration}s",
    ]
    command += ["--timeout", f"{args.timeout}s", "-s", str(LUA), f"http://{targets[0]}/"]
    env = {**os.environ, "LOAD_KIND": kind, "LOAD_TARGETS": ",".join(targets), **(extra or {})}
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish_wrk(process: subprocess.Popen[str]) -> Figures:
    out, _ = process.communicate(timeout=600)
    return wrk_figures(out)


# --- admin writes (paced, one at a time, round-robin over the instances) ------------


@dataclass
class Writer:
    """Stage moves, kill / resume and member adds at a fixed pace; every one audited."""

    urls: list[str]
    token: str
    seeded: Seeded
    rate: float
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    by_operation: dict[str, list[float]] = field(default_factory=dict)
    changes: list[tuple[float, int]] = field(default_factory=list)  # (write start, version)
    elapsed: float = 0.0  # more than the duration when slow writes held the pace up
    early: set[str] = field(default_factory=set)

    def run(self, seconds: float) -> None:
        auth = {"Authorization": f"Bearer {self.token}"}
        clients = [httpx.Client(base_url=url, headers=auth, timeout=30) for url in self.urls]
        started = due = time.perf_counter()
        n = 0
        while due < started + seconds:
            time.sleep(max(0.0, due - time.perf_counter()))
            self._one(clients[n % len(clients)], n)
            n += 1
            # behind (a slow write): go on at once, but never burst to catch up
            due = max(due + 1 / self.rate, time.perf_counter())
        for client in clients:
            client.close()
        self.elapsed = time.perf_counter() - started

    def _one(self, api: httpx.Client, n: int) -> None:
        name, path, body, flag = self._operation(n)
        started = time.monotonic()  # system-wide clock: comparable with the holder's
        try:
            response = api.post(path, json=body)
        except httpx.HTTPError as error:
            self.errors.append(f"{name}: {type(error).__name__}")
            return
        if response.status_code >= 400:
            self.errors.append(f"{name}: {response.status_code} {response.text[:200]}")
        else:
            self.latencies.append(time.monotonic() - started)
            self.by_operation.setdefault(name.split()[0], []).append(self.latencies[-1])
            if name.startswith("stage"):
                self.early ^= {flag}  # it moved: move it back next time
            self._note_version(api, started)

    def _note_version(self, api: httpx.Client, started: float) -> None:
        """The content version this write produced, to time its delivery to the streams.

        Writes go one at a time, so the version right after one is the version it made.
        (A full snapshot fetch, as every SDK makes after a change; not in the figures.)
        """
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            sdk = {"Authorization": f"Bearer {self.seeded.sdk_key}"}
            etag = api.get("/sdk/v1/snapshot", headers=sdk).headers["ETag"]
            self.changes.append((started, int(etag.strip('"').rsplit(".", 1)[1])))

    def breakdown(self) -> str:
        """Per operation: count, p50 and max, to tell which write a slow p99 was."""
        parts = []
        for name, times in sorted(self.by_operation.items()):
            ms = [t * 1000 for t in times]
            parts.append(f"{name} {len(ms)}: p50 {percentile(ms, 50):.0f} max {max(ms):.0f} ms")
        return "; ".join(parts)

    def _operation(self, n: int) -> tuple[str, str, dict[str, Any], str]:
        """Write ``n``: its name, path, body and flag (the cohort for member adds)."""
        turn, kind = divmod(n, 4)
        if kind == 2:
            members = [f"new-user-{n}-{i}" for i in range(3)]
            path = f"/api/v1/cohorts/{BIG_COHORT}/members"
            return "member add", path, {"add": members}, BIG_COHORT
        if kind == 0:
            flag = self.seeded.toggled[turn % len(self.seeded.toggled)]
            stage = "off" if flag in self.early else "early_access"
            return f"stage {stage}", f"{self._state(flag)}/stage", {"stage": stage}, flag
        flag = self.seeded.killable[turn % len(self.seeded.killable)]
        action = "kill" if kind == 1 else "resume"
        return action, f"{self._state(flag)}/{action}", {}, flag

    @staticmethod
    def _state(flag: str) -> str:
        return f"/api/v1/flags/{flag}/environments/{ENVIRONMENT}"


# --- streams (a child process: its sockets must not share a core with our threads) --


class HeldStream(asyncio.Protocol):
    """One SDK stream: its HTTP status, the newest version heard, change events, closed."""

    def __init__(self, request: bytes) -> None:
        self.request, self.buffer = request, b""
        self.status, self.version, self.changes, self.closed = 0, -1, 0, False
        self.heard: list[tuple[int, float]] = []  # (version, arrival) per change event
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.status and (status := STATUS_LINE.match(self.buffer)):
            self.status = int(status.group(1))
        now, end = time.monotonic(), 0
        for match in EVENT.finditer(self.buffer):
            self.version = max(self.version, int(match.group(2)))
            if match.group(1) == b"change":
                self.changes += 1
                self.heard.append((self.version, now))
            end = match.end()
        self.buffer = self.buffer[end:][-65_536:]  # keep-alive comments pile up otherwise

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True


def hold_streams(ports: list[int], sdk_key: str, count: int, pipe: Connection) -> None:
    """Child process: open ``count`` streams, report, hold until told the final version."""
    _raise_file_limit()
    asyncio.run(_hold(ports, sdk_key, count, pipe))


async def _hold(ports: list[int], sdk_key: str, count: int, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    request = (
        f"GET /sdk/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {sdk_key}\r\n\r\n"
    )
    streams, unreachable = [], 0
    for n in range(count):
        stream = HeldStream(request.encode())
        try:
            await loop.create_connection(lambda s=stream: s, "127.0.0.1", ports[n % len(ports)])  # type: ignore[misc]
        except OSError:
            unreachable += 1
            continue
        streams.append(stream)
    await _until(lambda: all(s.version >= 0 or s.closed for s in streams), 60)
    pipe.send(_stream_report(streams, unreachable, -1))
    versions: list[int] = await loop.run_in_executor(None, pipe.recv)
    final = max(versions, default=-1)
    await _until(lambda: all(s.version >= final or s.closed for s in streams), 15)
    report: dict[str, Any] = _stream_report(streams, unreachable, final)
    report["reached"] = _reached(streams, versions)
    pipe.send(report)
    for stream in streams:
        if stream.transport is not None:
            stream.transport.close()


async def _until(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def _stream_report(streams: list[HeldStream], unreachable: int, final: int) -> dict[str, int]:
    ok = [s for s in streams if s.status == 200]
    changes = [s.changes for s in ok] or [0]
    return {
        "held": sum(1 for s in ok if not s.closed),
        "refused": unreachable + len(streams) - len(ok),
        "dropped": sum(1 for s in ok if s.closed),
        "behind": sum(1 for s in ok if not s.closed and s.version < final),
        "events": sum(changes),
        "fewest": min(changes),
        "most": max(changes),
    }


def _reached(streams: list[HeldStream], versions: list[int]) -> list[float | None]:
    """Per version: when the last open stream had heard it or a newer one (None: never).

    Newer counts because a stream that is woken late sends only the newest version.
    """
    held = [s for s in streams if s.status == 200 and not s.closed]
    wanted = sorted(versions)
    latest: list[float] = [0.0] * len(wanted)
    reached_by = [0] * len(wanted)
    for stream in held:
        index = 0
        for version, arrival in stream.heard:
            while index < len(wanted) and wanted[index] <= version:
                latest[index] = max(latest[index], arrival)
                reached_by[index] += 1
                index += 1
    when = dict(zip(wanted, latest, strict=True))
    everyone = {v for v, n in zip(wanted, reached_by, strict=True) if n == len(held)}
    return [when[v] if v in everyone else None for v in versions]


class StreamHolder:
    """The stream-holding child process, seen from here."""

    def __init__(self, ports: list[int], sdk_key: str, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(
            target=hold_streams, args=(ports, sdk_key, count, child), daemon=True
        )

    def open(self) -> dict[str, Any]:
        self.process.start()
        return self._receive(180)

    def close(self, versions: list[int]) -> dict[str, Any]:
        """Stop after every stream heard the newest of ``versions``, or 15 s.

        ``reached`` in the report: per version, when the last stream had it.
        """
        self.pipe.send(versions)
        report = self._receive(60)
        self.process.join(15)
        return report

    def _receive(self, seconds: float) -> dict[str, Any]:
        if not self.pipe.poll(seconds):
            raise RuntimeError("the stream holder did not answer")
        return dict(self.pipe.recv())


# --- memory -------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Samples each instance's RSS (gunicorn master + workers) once a second."""

    def __init__(self, services: list[LiveService]) -> None:
        super().__init__(daemon=True)
        self.services, self.stopped = services, threading.Event()
        self.first = self.sample()
        self.peak = list(self.first)
        self.last = list(self.first)

    def sample(self) -> list[float]:
        return [worker_rss_mib(s) for s in self.services]

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            self.last = self.sample()
            self.peak = [max(a, b) for a, b in zip(self.peak, self.last, strict=True)]

    def stop(self) -> None:
        self.stopped.set()
        self.join()
        self.last = self.sample()


# --- one configuration --------------------------------------------------------------


@dataclass
class Outcome:
    """One configuration's results, for the report."""

    instances: int
    workers: int
    rows: dict[str, Figures]
    streams: dict[str, int]
    writes: int
    final_version: int
    delivery: list[float | None]  # per write: start -> every stream heard it (s)
    memory: RssSampler
    log_problems: list[str]
    load: tuple[str, str]


def measure_baseline(instances: int, workers: int, args: argparse.Namespace) -> Figures:
    """Bare ``GET /ping`` on as many gunicorn instances, same wrk connections and script."""
    ports = [free_port() for _ in range(instances)]
    bare = [serve_bare(port, workers, "gevent") for port in ports]
    try:
        targets = [f"127.0.0.1:{port}" for port in ports]
        seconds = min(args.duration, 30)
        return finish_wrk(run_wrk("ping", targets, args.connections, args, seconds=seconds))
    finally:
        for process in bare:
            process.terminate()
            process.wait(15)


@contextmanager
def instances_running(count: int, workers: int) -> Iterator[list[LiveService]]:
    """``count`` instances on a fresh database and Redis; their log files removed after."""
    database = fresh_database()
    serve = ("--workers", str(workers))
    env = {**QUIET, "FLAGSVC_WORKERS": str(workers), **ONE_CLIENT_MANY_STREAMS}
    with ExitStack() as stack:
        services = []
        for n in range(count):
            service = LiveService(database, REDIS_URL, env=env, serve_args=serve)
            stack.callback(service.log_path.unlink, missing_ok=True)
            if n == 0:
                service.admin_token = service.cli("init", timeout=300) or None
            services.append(stack.enter_context(service.start(timeout=START_SECONDS)))
        yield services


def run_configuration(instances: int, args: argparse.Namespace) -> Outcome:
    workers = max(1, args.workers // instances)
    progress(f"{instances} instance(s) x {workers} worker(s): baseline")
    baseline = measure_baseline(instances, workers, args)
    with instances_running(instances, workers) as services:
        progress("seeding")
        seeded = seed(services[0])
        holder = StreamHolder([s.port for s in services], seeded.sdk_key, args.streams)
        opened = holder.open()
        progress(f"snapshot {seeded.snapshot_bytes / 1024:.0f} KiB; streams open: {opened}")
        progress(f"mix for {args.duration} s")
        memory = RssSampler(services)
        memory.start()
        load_before = _loadavg()
        rows, writer = mix(services, seeded, args)
        final = snapshot_version(services[0], seeded.sdk_key)
        streams = holder.close([v for _, v in writer.changes] + [final])
        memory.stop()
        problems = [
            line for s in services for line in s.logs().splitlines() if LOG_PROBLEM.search(line)
        ]
    rows["overall (mix)"] = merged(list(rows.values()))
    rows["bare GET /ping (baseline)"] = baseline
    reached = streams.pop("reached")[:-1]
    delivery = [r and r - start for (start, _), r in zip(writer.changes, reached, strict=True)]
    writes = len(writer.latencies)
    load = (load_before, _loadavg())
    return Outcome(
        instances, workers, rows, streams, writes, final, delivery, memory, problems, load
    )


def mix(
    services: list[LiveService], seeded: Seeded, args: argparse.Namespace
) -> tuple[dict[str, Figures], Writer]:
    """Everything at once for ``--duration`` seconds; figures per request type."""
    targets = [f"127.0.0.1:{s.port}" for s in services]
    n = len(services)
    common = {
        "LOAD_SDK_KEY": seeded.sdk_key,
        "LOAD_FLAGS": ",".join(seeded.flags),
        "LOAD_PER_CALL": str(EVALUATE_FLAGS),
    }
    polls = max(n, args.connections * 2 // 3)
    pace = {"LOAD_DELAY_MS": str(int(1000 * n / args.full_fetches_per_second))}
    processes = {
        "snapshot revalidate": run_wrk("poll", targets, polls, args, common),
        "evaluate 10 flags": run_wrk("evaluate", targets, args.connections - polls, args, common),
        "snapshot full (paced)": run_wrk("full", targets, n, args, {**common, **pace}),
    }
    writer = Writer(
        [s.url for s in services], str(services[0].admin_token), seeded, args.writes_per_second
    )
    writer.run(args.duration)
    rows = {name: finish_wrk(process) for name, process in processes.items()}
    writes = sample_figures(writer.latencies, writer.errors, writer.elapsed)
    writes.detail = "; ".join(filter(None, [writer.breakdown(), writes.detail]))
    rows["admin writes (paced)"] = writes
    return rows, writer


def snapshot_version(service: LiveService, sdk_key: str) -> int:
    """The production content version now (from the snapshot's ETag ``"env.version"``)."""
    response = httpx.get(
        f"{service.url}/sdk/v1/snapshot", headers={"Authorization": f"Bearer {sdk_key}"}, timeout=30
    )
    response.raise_for_status()
    return int(response.headers["ETag"].strip('"').rsplit(".", 1)[1])


def progress(text: str) -> None:
    print(f"... {time.monotonic() - STARTED:5.0f} s  {text}", flush=True)


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _raise_file_limit() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- report -------------------------------------------------------------------------


def report(outcome: Outcome, args: argparse.Namespace) -> None:
    rows, bare = outcome.rows, outcome.rows["bare GET /ping (baseline)"]
    print(f"\n$ {' '.join(['.venv/bin/python', 'bench/load.py', *sys.argv[1:]])}")
    print(
        f"{outcome.instances} instance(s) x {outcome.workers} gevent worker(s); "
        f"{args.duration} s; {args.connections} wrk connections flat out; "
        f"load average {outcome.load[0]} -> {outcome.load[1]}"
    )
    print(ROW.format("", "requests", "req/s", "p50 ms", "p99 ms", "errors", "rate"))
    for name, f in rows.items():
        rate = f"{f.errors / f.requests if f.requests else 0.0:.2%}"
        print(
            ROW.format(
                name,
                f.requests,
                f"{f.rps:.1f}",
                f"{f.at(50):.2f}",
                f"{f.at(99):.2f}",
                f.errors,
                rate,
            )
        )
    for name, f in rows.items():
        if f.detail:
            print(f"  {name}: {f.detail}")
    _report_streams(outcome)
    _report_memory(outcome)
    overall = rows["overall (mix)"]
    print(
        f"ratios mix / bare GET /ping: throughput {overall.rps / bare.rps:.2f}x, "
        f"p50 {overall.at(50) / bare.at(50):.1f}x, p99 {overall.at(99) / bare.at(99):.1f}x"
    )
    print(f"service log lines with errors: {len(outcome.log_problems)}")
    for line in outcome.log_problems[:10]:
        print(f"  {line[:300]}")


def _report_streams(outcome: Outcome) -> None:
    s = outcome.streams
    print(
        f"streams: {s['held']} held to the end, {s['refused']} refused, {s['dropped']} dropped, "
        f"{s['behind']} without the final version {outcome.final_version}"
    )
    print(
        f"change events delivered: {s['events']} ({s['fewest']}-{s['most']} per stream) "
        f"for {outcome.writes} admin writes (events coalesce when writes are close)"
    )
    delivered = [t for t in outcome.delivery if t is not None]
    if delivered:
        missed = len(outcome.delivery) - len(delivered)
        print(
            f"write start -> every stream heard it: {summary(delivered)} "
            f"over {len(delivered)} writes ({missed} never reached every stream)"
        )


def _report_memory(outcome: Outcome) -> None:
    m = outcome.memory
    print(
        "RSS (gunicorn master + workers, MiB): "
        + "; ".join(
            f"instance {i + 1}: seeded+streams {a:.0f}, peak {b:.0f}, final {c:.0f}"
            for i, (a, b, c) in enumerate(zip(m.first, m.peak, m.last, strict=True))
        )
        + (f"; total peak {sum(m.peak):.0f}" if len(m.peak) > 1 else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, choices=[1, 2], help="default: 1, then 2")
    parser.add_argument("--duration", type=int, default=180, help="seconds of mixed load")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=24, help="wrk, flat out")
    parser.add_argument("--writes-per-second", type=float, default=3.0)
    parser.add_argument("--full-fetches-per-second", type=float, default=4.0)
    parser.add_argument("--workers", type=int, default=2, help="total, split over instances")
    parser.add_argument("--timeout", type=int, default=5, help="seconds before wrk gives up")
    args = parser.parse_args()
    _raise_file_limit()
    outcomes = [
        run_configuration(n, args) for n in ([args.instances] if args.instances else [1, 2])
    ]
    for outcome in outcomes:
        report(outcome, args)


if __name__ == "__main__":
    main()
