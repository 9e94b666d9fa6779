"""Propagation: how fast a change made through instance A reaches SDK streams on B.

    .venv/bin/python bench/propagation.py [--changes 200] [--streams 1000] [--rounds 10]

Two real instances (gunicorn, as deployed) share PostgreSQL and Redis.

1. One SDK-like SSE client streams from B; 200 kill-switch toggles go through A's API,
   one at a time. Latency = request start on A → ``change`` event read on B.
   Baselines from the same run: the write request alone, and a bare Redis
   PUBLISH → subscriber round trip. Target: p99 ≤ 100 ms.
2. 1,000 concurrent streams on one instance (once per worker class: gevent, then
   gthread with 1,100 threads); ``--rounds`` changes through A; latency until EVERY
   stream has the change. Target: p99 ≤ 250 ms. Also the worker's memory.

The 1,000 clients are one asyncio loop of raw sockets that timestamp bytes as they
arrive (an HTTP client library would add its own parsing time to every figure).
Everything runs on this one machine: clients, both instances, PostgreSQL and Redis.

``BENCH_PG_SERVER`` (default ``postgresql://postgres@127.0.0.1:5432``): the database
``flagsvc_bench`` there is dropped and created. ``BENCH_REDIS_URL`` (default
``redis://127.0.0.1:6379/15``) is flushed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import queue
import re
import resource
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import httpx
import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live import LiveService
from tests.live import start_service

PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
QUIET = {"FLAGSVC_ACCESS_LOG": "0"}
FLAG = "bench-flag"
EVENT = re.compile(rb'event: (hello|change)\ndata: [^\n]*"version": (\d+)')


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"p50 {percentile(ms, 50):7.2f} ms  p99 {percentile(ms, 99):7.2f} ms  max {max(ms):7.2f} ms"
    )


def fresh_database() -> str:
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS flagsvc_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE flagsvc_bench")
    redis.Redis.from_url(REDIS_URL).flushdb()
    return f"{PG_SERVER}/flagsvc_bench"


class Api:
    """Admin calls on one instance; toggles the flag's kill switch in production."""

    def __init__(self, service: LiveService) -> None:
        auth = {"Authorization": f"Bearer {service.admin_token}"}
        self.http = httpx.Client(base_url=service.url, headers=auth, timeout=30)
        self.killed = False

    def create_flag(self) -> None:
        objective = self.http.post(
            "/api/v1/objectives", json={"title": "B", "period": "2026-Q4", "owner": "o"}
        ).json()
        kr = self.http.post(
            f"/api/v1/objectives/{objective['id']}/key-results",
            json={"title": "K", "metric": "m", "baseline": 0, "target": 1, "unit": "u"},
        ).json()
        body = {"key": FLAG, "name": "F", "flow_item": "feature", "key_result_id": kr["id"]}
        self.http.post("/api/v1/flags", json=body).raise_for_status()

    def toggle(self) -> None:
        self.killed = not self.killed
        action = "kill" if self.killed else "resume"
        self.http.post(f"/api/v1/flags/{FLAG}/environments/production/{action}").raise_for_status()


def read_stream(url: str, sdk_key: str, events: queue.Queue[tuple[float, str, int]]) -> None:
    """One SDK-like client (a thread): every named event with the time it was read."""
    headers = {"Authorization": f"Bearer {sdk_key}"}
    name = ""
    try:
        with httpx.stream("GET", f"{url}/sdk/v1/stream", headers=headers, timeout=None) as response:
            for line in response.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name:
                    events.put((time.perf_counter(), name, json.loads(line[6:])["version"]))
    except httpx.HTTPError:
        pass  # the instance stopped at the end of the run


def single_stream(api: Api, b: LiveService, sdk_key: str, changes: int) -> dict[str, list[float]]:
    events: queue.Queue[tuple[float, str, int]] = queue.Queue()
    threading.Thread(target=read_stream, args=(b.url, sdk_key, events), daemon=True).start()
    assert events.get(timeout=10)[1] == "hello"
    propagation, writes = [], []
    for _ in range(changes):
        started = time.perf_counter()
        api.toggle()
        writes.append(time.perf_counter() - started)
        arrived, name, _version = events.get(timeout=10)
        assert name == "change"
        propagation.append(arrived - started)
    return {"propagation": propagation, "write": writes}


def redis_round_trips(count: int) -> list[float]:
    """Baseline: PUBLISH on one connection → message read on a subscribed one."""
    client = redis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub()
    pubsub.subscribe("flagsvc-bench:baseline")
    pubsub.get_message(timeout=1)
    times = []
    for n in range(count):
        started = time.perf_counter()
        client.publish("flagsvc-bench:baseline", str(n))
        while pubsub.get_message(timeout=1) is None:
            pass
        times.append(time.perf_counter() - started)
    pubsub.close()
    return times


class Probe(asyncio.Protocol):
    """A raw-socket SSE client: timestamps each hello / change as its bytes arrive."""

    def __init__(self, request: bytes, board: Board) -> None:
        self.request, self.board, self.buffer = request, board, b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data
        end = 0
        for match in EVENT.finditer(self.buffer):
            self.board.record(match.group(1), int(match.group(2)), now)
            end = match.end()
        self.buffer = self.buffer[end:]


class Board:
    """What every probe saw: hello count, and arrival times per change version."""

    def __init__(self) -> None:
        self.hellos = 0
        self.arrivals: dict[int, list[float]] = defaultdict(list)

    def record(self, name: bytes, version: int, at: float) -> None:
        if name == b"hello":
            self.hellos += 1
        else:
            self.arrivals[version].append(at)


async def _wait(condition: object, seconds: float) -> bool:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if condition():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.001)
    return False


@dataclass
class ManyResult:
    every: list[float] = field(default_factory=list)  # each stream, each change
    all: list[float] = field(default_factory=list)  # per change: until the last stream had it
    rss_mib: float = 0.0


async def _connect(
    port: int, sdk_key: str, board: Board, streams: int, per_address: int | None = None
) -> list[asyncio.BaseTransport]:
    """Open ``streams`` streams; with ``per_address``, from that many per loopback address
    (127.0.0.2, 127.0.0.3, …: SDKs come from many hosts, and the service's default share
    per client address is 200), else all from 127.0.0.1."""
    loop = asyncio.get_running_loop()
    request = (
        f"GET /sdk/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {sdk_key}\r\n\r\n"
    )
    transports = []
    for n in range(streams):
        local = None if per_address is None else (f"127.0.0.{2 + n // per_address}", 0)
        transport, _ = await loop.create_connection(
            lambda: Probe(request.encode(), board), "127.0.0.1", port, local_addr=local
        )
        transports.append(transport)
    assert await _wait(lambda: board.hellos == streams, 60), f"only {board.hellos} hellos"
    return transports


async def _one_round(api: Api, board: Board, streams: int) -> list[float]:
    """One change through A; each stream's latency once every stream has it."""
    before = set(board.arrivals)
    started = time.perf_counter()
    await asyncio.to_thread(api.toggle)

    def everyone() -> bool:
        return any(len(board.arrivals[v]) >= streams for v in set(board.arrivals) - before)

    assert await _wait(everyone, 30), "not every stream saw the change"
    version = next(v for v in set(board.arrivals) - before)
    return [t - started for t in board.arrivals[version]]


async def many_streams(
    api: Api, b: LiveService, sdk_key: str, streams: int, rounds: int
) -> ManyResult:
    board = Board()
    transports = await _connect(b.port, sdk_key, board, streams)
    result = ManyResult(rss_mib=worker_rss_mib(b))
    for _ in range(rounds):
        latencies = await _one_round(api, board, streams)
        result.every += latencies
        result.all.append(max(latencies))
        await asyncio.sleep(0.2)
    for transport in transports:
        transport.close()
    return result


def worker_rss_mib(service: LiveService) -> float:
    """Resident memory of the gunicorn master and its workers."""
    assert service.process is not None
    pids = [service.process.pid] + [
        int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == service.process.pid
    ]
    total_kib = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            total_kib += next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    return total_kib / 1024


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def run_many(
    database: str, a: LiveService, api: Api, worker_class: str, args: argparse.Namespace
) -> ManyResult:
    print(f"... {args.streams} streams, worker class {worker_class}", flush=True)
    env = {
        **QUIET,
        "FLAGSVC_WORKER_CLASS": worker_class,
        "FLAGSVC_MAX_STREAMS": str(args.streams + 100),
        # one SDK key from one address holds them all: no fair share to keep here
        "FLAGSVC_MAX_STREAMS_PER_KEY": str(args.streams + 100),
        "FLAGSVC_MAX_STREAMS_PER_ADDRESS": str(args.streams + 100),
    }
    threads = ("--threads", str(args.streams + 100))  # gthread: one thread per stream
    with start_service(database, REDIS_URL, env=env, init=False, serve_args=threads) as b:
        sdk_key = a.sdk_key("production")
        return asyncio.run(many_streams(api, b, sdk_key, args.streams, args.rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    database = fresh_database()
    with (
        start_service(database, REDIS_URL, env=QUIET) as a,
        start_service(database, REDIS_URL, env=QUIET, init=False) as b,
    ):
        api = Api(a)  # one, so it knows the kill switch's state across phases
        api.create_flag()
        one = single_stream(api, b, a.sdk_key("production"), args.changes)
        pubsub = redis_round_trips(args.changes)
        many = {wc: run_many(database, a, api, wc, args) for wc in ("gevent", "gthread")}
    report_one(args, one, pubsub)
    report_many(args, one, many)


def report_one(args: argparse.Namespace, one: dict[str, list[float]], pubsub: list[float]) -> None:
    p99 = percentile(one["propagation"], 99)
    after_write = [max(0.0, p - w) for p, w in zip(one["propagation"], one["write"], strict=True)]
    print(f"\n1. one stream on B, {args.changes} changes through A's API (target p99 <= 100 ms)")
    print(f"   change -> event on B      {summary(one['propagation'])}")
    print(f"   of which after A answered {summary(after_write)}")
    print(f"   baseline: write request   {summary(one['write'])}")
    print(f"   baseline: Redis pub/sub   {summary(pubsub)}")
    print(
        f"   ratio p99 propagation / p99 write request: {p99 / percentile(one['write'], 99):.2f}x"
    )


def report_many(
    args: argparse.Namespace, one: dict[str, list[float]], many: dict[str, ManyResult]
) -> None:
    single = percentile(one["propagation"], 99)
    print(f"\n2. {args.streams} streams on one instance, {args.rounds} changes through A")
    print("   (target p99 <= 250 ms)")
    for worker_class, result in many.items():
        print(f"   {worker_class:8} each stream  {summary(result.every)}")
        print(
            f"   {worker_class:8} all streams  {summary(result.all)}  RSS {result.rss_mib:.0f} MiB"
        )
        ratio = percentile(result.every, 99) / single
        print(
            f"   {worker_class:8} ratio p99 ({args.streams} streams) / p99 (1 stream): {ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
