"""Side by side with the Unleash server on its own ground: SDK delivery, same workload, same run.

    .venv/bin/python bench/vs_unleash.py [--rounds 3] [--duration 10] [--connections 50]
                                         [--changes 30] [--streams 1000]
                                         [--unleash-dir DIR] [--unleash-version 7.5.1]
                                         [--measure "304 revalidation" ...]

Installs ``unleash-server`` from the npm registry into a temporary folder (or reuses
``--unleash-dir``; needs Node 20 and npm), starts it as one Node process on
PostgreSQL with its defaults, and starts flagsvc with its defaults (``flagsvc serve``:
one gevent worker, no Redis) on PostgreSQL too. Both get the same workload through
their admin APIs: 200 flags on in production, each on for a list of 10 users plus a
50 % rollout of everyone else (flagsvc: a 10-member cohort per flag, stage
``general`` at 50 %; Unleash: a ``flexibleRollout`` at 100 % constrained to the 10
user ids, then one at 50 %).

Then, in ``--rounds`` interleaved rounds (the order of the two alternates each round),
``wrk -t2 -c<connections> -d<duration>s`` against each:

- **304 revalidation**: ``GET /sdk/v1/snapshot`` vs ``GET /api/client/features`` with
  the current ETag in ``If-None-Match``;
- **full fetch, identity** and **full fetch, gzip** (``Accept-Encoding: gzip``);
- **all flags for one user**: ``POST /sdk/v1/evaluate`` with no flag list vs Unleash's
  frontend API ``GET /api/frontend?userId=…``.

For each: requests/s, p50/p99, server CPU per request (utime + stime of the server's
whole process group over the run, from ``/proc``) and the server's RSS afterwards.
Then **change to client**: ``--changes`` changes through each admin API while one
client watches: flagsvc's SDK stream (the change is in hand when the ``change`` event
carries it, else after the snapshot fetch it triggers), Unleash's client API polled in
a tight loop with ``If-None-Match`` (its SDKs poll every 15 s); and flagsvc with
``--streams`` streams open on the one instance (event arrival on every stream).

Every figure is printed with the ratio flagsvc / Unleash (for latency and CPU: lower
is better, so the ratio shown is Unleash / flagsvc: above 1 means flagsvc is ahead).
The machine's load average is printed with each measurement: this is a 2-core machine
shared with others; prefer a quiet one and compare ratios.

``BENCH_PG_SERVER`` (default ``postgresql://postgres@127.0.0.1:5432``): the databases
``flagsvc_bench_vs`` and ``unleash_bench`` there are dropped and created.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import queue
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import httpx
import psycopg

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
from propagation import Board  # noqa: E402
from propagation import _connect  # noqa: E402
from propagation import _wait  # noqa: E402
from propagation import percentile  # noqa: E402
from sdk_http import lua_script  # noqa: E402

from tests.live import LiveService  # noqa: E402
from tests.live import die_with_parent  # noqa: E402
from tests.live import free_port  # noqa: E402
from tests.live import start_service  # noqa: E402

PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
FLAGSVC_DATABASE = "flagsvc_bench_vs"
UNLEASH_DATABASE = "unleash_bench"
FLAGS = 200
LIST_SIZE = 10
ROLLOUT = 50
USER = "user-4242"
ENVIRONMENT = "production"
UNLEASH_ADMIN = "*:*.bench-admin-secret"
UNLEASH_CLIENT = "default:production.bench-client-secret"
UNLEASH_FRONTEND = "default:production.bench-frontend-secret"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def flag_key(n: int) -> str:
    return f"vs-{n:03d}"


def listed_users(n: int) -> list[str]:
    return [f"user-{n * LIST_SIZE + i}" for i in range(LIST_SIZE)]


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def fresh_database(name: str) -> str:
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_SERVER}/{name}"


# --- process accounting (/proc) -----------------------------------------------------


def group_pids(pgid: int) -> list[int]:
    """Every live process in process group ``pgid`` (the server and its workers)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields and int(fields[2]) == pgid:
                pids.append(int(entry))
    return pids


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pgid: int) -> float:
    """utime + stime of the process group so far."""
    total = 0
    for pid in group_pids(pgid):
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def rss_mib(pgid: int) -> float:
    total_kib = 0
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
            total_kib += next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    return total_kib / 1024


# --- the two services ---------------------------------------------------------------


@dataclass
class Endpoint:
    """One wrk target: URL, method, headers and body."""

    url: str
    headers: dict[str, str]
    method: str = "GET"
    body: str | None = None


@dataclass
class Server:
    """What the measurements need from either service."""

    name: str
    pgid: int
    revalidate: Endpoint
    full: Endpoint
    evaluate: Endpoint
    change: Callable[[], None]
    sizes: dict[str, int] = field(default_factory=dict)


class Unleash:
    """unleash-server from npm, one Node process on PostgreSQL, its defaults."""

    def __init__(self, folder: Path, version: str) -> None:
        self.folder, self.version = folder, version
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.enabled = True

    @property
    def package(self) -> str:
        return f"unleash-server@{self.version}"

    def install(self) -> None:
        package = self.folder / "node_modules" / "unleash-server" / "package.json"
        if package.exists() and json.loads(package.read_text())["version"] == self.version:
            return
        progress(f"npm install {self.package} into {self.folder}")
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", self.package],
            cwd=self.folder,
            check=True,
        )

    def start(self) -> None:
        (self.folder / "start.js").write_text(
            "require('unleash-server').start().then(() => console.log('ready'));\n"
        )
        env = {
            **os.environ,
            "DATABASE_URL": fresh_database(UNLEASH_DATABASE).replace("postgresql:", "postgres:"),
            "DATABASE_SSL": "false",
            "PORT": str(self.port),
            "LOG_LEVEL": "error",
            "INIT_ADMIN_API_TOKENS": UNLEASH_ADMIN,
            "INIT_BACKEND_API_TOKENS": UNLEASH_CLIENT,
            "INIT_FRONTEND_API_TOKENS": UNLEASH_FRONTEND,
        }
        log = (self.folder / "unleash.log").open("ab")
        self.process = subprocess.Popen(
            ["node", "start.js"],
            cwd=self.folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.url}/health", timeout=1)
                return
            time.sleep(0.5)
        raise RuntimeError(f"Unleash did not start; see {self.folder / 'unleash.log'}")

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)

    def seed(self) -> None:
        admin = {"Authorization": UNLEASH_ADMIN}
        base = f"{self.url}/api/admin/projects/default/features"
        with httpx.Client(headers=admin, timeout=60) as api, ThreadPoolExecutor(8) as pool:

            def one(n: int) -> None:
                key = flag_key(n)
                ok(api.post(base, json={"name": key, "type": "release"}))
                strategies = f"{base}/{key}/environments/{ENVIRONMENT}/strategies"
                users = {"contextName": "userId", "operator": "IN", "values": listed_users(n)}
                listed = {"rollout": "100", "stickiness": "default", "groupId": key}
                ok(api.post(strategies, json=_flexible(listed, [users])))
                rollout = {"rollout": str(ROLLOUT), "stickiness": "default", "groupId": key}
                ok(api.post(strategies, json=_flexible(rollout, [])))
                ok(api.post(f"{base}/{key}/environments/{ENVIRONMENT}/on"))

            list(pool.map(one, range(FLAGS)))

    def toggle(self, api: httpx.Client) -> None:
        """Switch the first flag off in production, or on again."""
        self.enabled = not self.enabled
        state = "on" if self.enabled else "off"
        path = f"/api/admin/projects/default/features/{flag_key(0)}/environments/{ENVIRONMENT}"
        ok(api.post(f"{self.url}{path}/{state}"))

    def server(self) -> Server:
        assert self.process is not None
        client = {"Authorization": UNLEASH_CLIENT}
        features = f"{self.url}/api/client/features"
        etag = ok(httpx.get(features, headers=client)).headers["ETag"]
        api = httpx.Client(headers={"Authorization": UNLEASH_ADMIN}, timeout=30)
        return Server(
            "Unleash",
            self.process.pid,
            Endpoint(features, {**client, "If-None-Match": etag}),
            Endpoint(features, client),
            Endpoint(f"{self.url}/api/frontend?userId={USER}", {"Authorization": UNLEASH_FRONTEND}),
            lambda: self.toggle(api),
        )


def _flexible(parameters: dict[str, str], constraints: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "flexibleRollout", "parameters": parameters, "constraints": constraints}


def ok(response: httpx.Response) -> httpx.Response:
    response.raise_for_status()
    return response


class Flagsvc:
    """flagsvc at its defaults: ``flagsvc serve`` (one gevent worker), no Redis."""

    def __init__(self) -> None:
        self.service: LiveService | None = None
        self.killed = False
        self.sdk_key = ""
        self.watch_key = ""
        """The change-to-client stream's own key: the 1,000 streams after it use
        ``sdk_key``, whose default share per key is 1,000."""

    def start(self) -> None:
        self.service = start_service(fresh_database(FLAGSVC_DATABASE))

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()

    def admin(self) -> httpx.Client:
        assert self.service is not None
        auth = {"Authorization": f"Bearer {self.service.admin_token}"}
        return httpx.Client(base_url=self.service.url, headers=auth, timeout=60)

    def seed(self) -> None:
        with self.admin() as api:
            objective = ok(
                api.post(
                    "/api/v1/objectives", json={"title": "B", "period": "2026-Q4", "owner": "o"}
                )
            ).json()
            kr = ok(
                api.post(
                    f"/api/v1/objectives/{objective['id']}/key-results",
                    json={"title": "K", "metric": "m", "baseline": 0, "target": 1, "unit": "u"},
                )
            ).json()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda n: self._seed_flag(api, kr["id"], n), range(FLAGS)))
            keys = f"/api/v1/environments/{ENVIRONMENT}/sdk-keys"
            self.sdk_key = ok(api.post(keys)).json()["sdk_key"]
            self.watch_key = ok(api.post(keys)).json()["sdk_key"]

    @staticmethod
    def _seed_flag(api: httpx.Client, kr_id: int, n: int) -> None:
        key = flag_key(n)
        body = {"key": key, "name": key, "flow_item": "feature", "key_result_id": kr_id}
        ok(api.post("/api/v1/flags", json=body))
        ok(api.post("/api/v1/cohorts", json={"key": f"list-{key}", "name": f"List {key}"}))
        ok(api.post(f"/api/v1/cohorts/list-{key}/members", json={"add": listed_users(n)}))
        state = f"/api/v1/flags/{key}/environments/{ENVIRONMENT}"
        etag = ok(api.get(state)).headers["ETag"]
        cohorts = {"cohorts": [f"list-{key}"]}
        ok(api.put(f"{state}/cohorts", json=cohorts, headers={"If-Match": etag}))
        readiness = f"/api/v1/flags/{key}/readiness"
        items = {"items": [{"key": "docs", "label": "Docs", "required": False}]}
        etag = ok(api.get(readiness)).headers["ETag"]
        ok(api.put(readiness, json=items, headers={"If-Match": etag}))
        ok(api.post(f"{state}/stage", json={"stage": "general", "rollout_percent": ROLLOUT}))

    def toggle(self, api: httpx.Client) -> None:
        """Kill the first flag in production, or resume it."""
        self.killed = not self.killed
        action = "kill" if self.killed else "resume"
        ok(api.post(f"/api/v1/flags/{flag_key(0)}/environments/{ENVIRONMENT}/{action}"))

    def server(self) -> Server:
        assert self.service is not None and self.service.process is not None
        url, auth = self.service.url, {"Authorization": f"Bearer {self.sdk_key}"}
        snapshot = f"{url}/sdk/v1/snapshot"
        etag = ok(httpx.get(snapshot, headers=auth)).headers["ETag"]
        api = self.admin()
        return Server(
            "flagsvc",
            self.service.process.pid,
            Endpoint(snapshot, {**auth, "If-None-Match": etag}),
            Endpoint(snapshot, auth),
            Endpoint(
                f"{url}/sdk/v1/evaluate",
                {**auth, "Content-Type": "application/json"},
                "POST",
                json.dumps({"context": {"key": USER}}),
            ),
            lambda: self.toggle(api),
        )


# --- wrk ----------------------------------------------------------------------------


@dataclass
class Run:
    """One wrk run against one server."""

    rps: float
    p50: float
    p99: float
    cpu_ms: float  # server CPU per request
    rss: float
    load: str
    errors: int


def run_wrk(server: Server, endpoint: Endpoint, args: argparse.Namespace) -> Run:
    script = lua_script(endpoint.method, endpoint.headers, endpoint.body)
    command = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    load = loadavg()
    cpu_before = cpu_seconds(server.pgid)
    try:
        out = subprocess.run(
            [*command, "-s", script, endpoint.url], capture_output=True, text=True, check=True
        ).stdout
    finally:
        os.unlink(script)
    cpu = cpu_seconds(server.pgid) - cpu_before
    requests = int(_find(r"(\d+) requests in", out))
    errors = int(_find(r"Non-2xx or 3xx responses: (\d+)", out, "0"))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return Run(
        rps=float(_find(r"Requests/sec:\s+([\d.]+)", out)),
        p50=_ms(_find(r"50%\s+([\d.]+\w+)", out)),
        p99=_ms(_find(r"99%\s+([\d.]+\w+)", out)),
        cpu_ms=cpu * 1000 / max(requests, 1),
        rss=rss_mib(server.pgid),
        load=load,
        errors=errors,
    )


def _find(pattern: str, text: str, default: str | None = None) -> str:
    match = re.search(pattern, text)
    if match is None:
        if default is None:
            raise RuntimeError(f"wrk output without {pattern!r}:\n{text}")
        return default
    return match.group(1)


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


MEASURES: dict[str, Callable[[Server], Endpoint]] = {
    "304 revalidation": lambda s: s.revalidate,
    "full fetch, identity": lambda s: Endpoint(
        s.full.url, {**s.full.headers, "Accept-Encoding": "identity"}
    ),
    "full fetch, gzip": lambda s: Endpoint(
        s.full.url, {**s.full.headers, "Accept-Encoding": "gzip"}
    ),
    "all flags, one user": lambda s: s.evaluate,
}


def body_sizes(server: Server) -> dict[str, str]:
    """Bytes on the wire for a full fetch, identity and gzip (checked to decompress)."""
    identity = ok(httpx.get(server.full.url, headers={**server.full.headers}))
    gzipped = {**server.full.headers, "Accept-Encoding": "gzip"}
    with httpx.stream("GET", server.full.url, headers=gzipped) as raw:
        encoded = b"".join(raw.iter_raw())
        coding = raw.headers.get("Content-Encoding", "identity")
    if coding == "gzip":
        assert gzip.decompress(encoded) == identity.content
    return {
        "identity": f"{len(identity.content) / 1024:.1f} KiB",
        "gzip": f"{len(encoded) / 1024:.1f} KiB ({coding})",
    }


# --- change to client ---------------------------------------------------------------


def flagsvc_change_latency(server: Server, url: str, sdk_key: str, changes: int) -> list[float]:
    """Write start → the new state in the client's hands (event with patch, or fetched)."""
    auth = {"Authorization": f"Bearer {sdk_key}"}
    arrived: queue.Queue[float] = queue.Queue()
    ready = threading.Event()

    def listen() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the service stops at the end of the run
            follow()

    def follow() -> None:
        with httpx.Client(base_url=url, headers=auth, timeout=None) as http:
            etag = ok(http.get("/sdk/v1/snapshot")).headers["ETag"]
            with http.stream("GET", "/sdk/v1/stream") as response:
                name = ""
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: ") and name == "hello":
                        ready.set()
                    elif line.startswith("data: ") and name == "change":
                        if "patch" not in json.loads(line[6:]):
                            fetched = http.get("/sdk/v1/snapshot", headers={"If-None-Match": etag})
                            etag = fetched.headers.get("ETag", etag)
                        arrived.put(time.perf_counter())

    threading.Thread(target=listen, daemon=True).start()
    assert ready.wait(30), "no hello on the flagsvc stream"
    return _timed_changes(server, arrived, changes)


def unleash_change_latency(server: Server, changes: int) -> list[float]:
    """Write start → a tight client-API poll (If-None-Match) sees the new ETag."""
    arrived: queue.Queue[float] = queue.Queue()
    stop = threading.Event()

    def poll() -> None:
        headers = dict(server.full.headers)
        with httpx.Client(timeout=30) as http:
            etag = ok(http.get(server.full.url, headers=headers)).headers["ETag"]
            while not stop.is_set():
                response = http.get(server.full.url, headers={**headers, "If-None-Match": etag})
                if response.status_code == 200 and response.headers["ETag"] != etag:
                    etag = response.headers["ETag"]
                    arrived.put(time.perf_counter())

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    time.sleep(0.5)
    try:
        return _timed_changes(server, arrived, changes)
    finally:
        stop.set()
        poller.join(30)


def _timed_changes(server: Server, arrived: queue.Queue[float], changes: int) -> list[float]:
    latencies = []
    for _ in range(changes):
        started = time.perf_counter()
        server.change()
        latencies.append(arrived.get(timeout=30) - started)
        time.sleep(0.05)
    return latencies


def many_streams(
    server: Server, port: int, sdk_key: str, streams: int, changes: int
) -> list[float]:
    """``streams`` open streams on flagsvc: write start → event on each stream."""

    async def run() -> list[float]:
        board = Board()
        transports = await _connect(port, sdk_key, board, streams, per_address=100)
        every: list[float] = []
        for _ in range(changes):
            before = set(board.arrivals)
            started = time.perf_counter()
            await asyncio.to_thread(server.change)

            def everyone(before: set[int] = before) -> bool:
                return any(len(board.arrivals[v]) >= streams for v in set(board.arrivals) - before)

            assert await _wait(everyone, 30), "not every stream saw the change"
            version = next(iter(set(board.arrivals) - before))
            every += [t - started for t in board.arrivals[version]]
            await asyncio.sleep(0.2)
        for transport in transports:
            transport.close()
        return every

    return asyncio.run(run())


# --- the run ------------------------------------------------------------------------


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {loadavg()}] {text}", flush=True)


@contextlib.contextmanager
def unleash_folder(args: argparse.Namespace) -> Iterator[Path]:
    if args.unleash_dir:
        folder = Path(args.unleash_dir)
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    folder = Path(tempfile.mkdtemp(prefix="unleash-bench-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--unleash-dir", help="install (or reuse) unleash-server here")
    parser.add_argument("--unleash-version", default="7.5.1")
    parser.add_argument(
        "--measure",
        action="append",
        choices=list(MEASURES),
        help="only these wrk measures (repeatable; default: all); --changes 0 skips the rest",
    )
    args = parser.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    flagsvc = Flagsvc()
    with unleash_folder(args) as folder:
        unleash = Unleash(folder, args.unleash_version)
        unleash.install()
        try:
            progress("starting Unleash and flagsvc on PostgreSQL")
            unleash.start()
            flagsvc.start()
            progress(f"seeding both: {FLAGS} flags, each {LIST_SIZE} listed users + {ROLLOUT} %")
            unleash.seed()
            flagsvc.seed()
            time.sleep(2)  # let Unleash's client-feature cache settle on the seeded state
            servers = [flagsvc.server(), unleash.server()]
            measure(servers, flagsvc, args)
        finally:
            flagsvc.stop()
            unleash.stop()


def measure(servers: list[Server], flagsvc: Flagsvc, args: argparse.Namespace) -> None:
    measures = {name: MEASURES[name] for name in args.measure or MEASURES}
    results: dict[str, dict[str, list[Run]]] = {m: {s.name: [] for s in servers} for m in measures}
    sizes = {s.name: body_sizes(s) for s in servers}
    for round_number in range(args.rounds):
        order = servers if round_number % 2 == 0 else servers[::-1]
        for measure_name, endpoint_of in measures.items():
            for server in order:
                progress(f"round {round_number + 1}: {measure_name}, {server.name}")
                results[measure_name][server.name].append(
                    run_wrk(server, endpoint_of(server), args)
                )
    report_throughput(results, sizes, args)  # printed now: a failure below keeps these
    assert flagsvc.service is not None
    if args.changes <= 0:
        return
    progress(f"change to client: {args.changes} changes each")
    latency = {
        "flagsvc": flagsvc_change_latency(
            servers[0], flagsvc.service.url, flagsvc.watch_key, args.changes
        )
    }
    try:
        latency["Unleash"] = unleash_change_latency(servers[1], args.changes)
    except queue.Empty:
        progress("Unleash: a change did not reach the polling client within 30 s")
    progress(f"flagsvc: {args.streams} streams, 10 changes")
    streams = many_streams(servers[0], flagsvc.service.port, flagsvc.sdk_key, args.streams, 10)
    report_latency(latency, streams, args)


def report_throughput(
    results: dict[str, dict[str, list[Run]]],
    sizes: dict[str, dict[str, str]],
    args: argparse.Namespace,
) -> None:
    print(
        f"\nflagsvc vs Unleash, {FLAGS} flags in production ({LIST_SIZE} listed users + "
        f"{ROLLOUT} % each); wrk -t2 -c{args.connections} -d{args.duration}s, "
        f"{args.rounds} interleaved rounds; medians (range)"
    )
    for name, size in sizes.items():
        print(f"  full snapshot bytes, {name}: identity {size['identity']}, gzip {size['gzip']}")
    header = f"{'':22} {'':8} {'req/s':>17} {'p50 ms':>8} {'p99 ms':>17} {'CPU ms/req':>11}"
    print(header + f" {'RSS MiB':>8} {'errors':>6}  load")
    for measure_name, by_server in results.items():
        for name, runs in by_server.items():
            print(f"{measure_name:22} {name:8} {_row(runs)}")
        ours, theirs = by_server["flagsvc"], by_server["Unleash"]
        rps = _median(ours, "rps") / _median(theirs, "rps")
        cpu = _median(theirs, "cpu_ms") / _median(ours, "cpu_ms")
        print(f"{'':22} {'ratio':8} req/s {rps:.2f}x, CPU per request {cpu:.2f}x (Unleash/flagsvc)")
    sys.stdout.flush()


def report_latency(
    latency: dict[str, list[float]], streams: list[float], args: argparse.Namespace
) -> None:
    print("\nchange to client (write start -> new state in the client's hands)")
    for name, values in latency.items():
        print(f"  {name:8} {_latency(values)}")
    if "Unleash" in latency:
        ratio = percentile(latency["Unleash"], 50) / percentile(latency["flagsvc"], 50)
        print(f"  ratio p50 Unleash / flagsvc: {ratio:.1f}x")
    print(f"  flagsvc, {args.streams} streams, event on each: {_latency(streams)}")


def _median(runs: list[Run], attribute: str) -> float:
    return statistics.median(getattr(run, attribute) for run in runs)


def _row(runs: list[Run]) -> str:
    def spread(attribute: str, digits: int) -> str:
        values = [getattr(r, attribute) for r in runs]
        low, mid, high = (
            f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values))
        )
        return f"{mid} ({low}-{high})"

    loads = ",".join(r.load for r in runs)
    return (
        f"{spread('rps', 0):>17} {_median(runs, 'p50'):8.2f} {spread('p99', 1):>17} "
        f"{_median(runs, 'cpu_ms'):11.3f} {max(r.rss for r in runs):8.0f} "
        f"{sum(r.errors for r in runs):6d}  {loads}"
    )


def _latency(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"p50 {percentile(ms, 50):8.1f} ms  p99 {percentile(ms, 99):8.1f} ms  "
        f"max {max(ms):8.1f} ms  ({len(ms)} samples)"
    )


if __name__ == "__main__":
    main()
