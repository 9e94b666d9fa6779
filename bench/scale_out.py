"""Scale-out, shown: three instances behind the shipped nginx config, one command.

    .venv/bin/python bench/scale_out.py [--flags 200] [--duration 10] [--connections 50]
                                        [--streams 300] [--changes 10]

Starts a private Redis (``redis-server`` on a free port), a fresh PostgreSQL database
(``flagsvc_bench_scale`` on ``BENCH_PG_SERVER``, dropped and created) seeded like
``snapshot_build.py`` (``--flags`` flags live in production, each with a 10-member
cohort), three flagsvc instances at their defaults (one gevent worker each, Redis for
fan-out and shared snapshots) and ``deploy/nginx.conf`` in front of them (nginx as a
child with a temporary prefix; only Docker's ``api`` name is replaced by the three
addresses). Then:

1. **304s with no database round trip**: ``wrk -t2 -c<connections>`` revalidating
   production's snapshot (``If-None-Match``) through nginx, and, as the baseline in the
   same run, against one instance directly. Database work is counted as transactions
   on the bench database (``pg_stat_database``: reads run in autocommit, one statement
   is one transaction), during the load and during as long an idle period: the
   difference per 304 is what a poll costs the database.
2. **every change on streams on all three**: ``--streams`` SSE streams opened through
   nginx (its round robin spreads them; each instance's ``flagsvc_sdk_streams_open`` is
   read to show it), then ``--changes`` changes made through nginx (a flag killed and
   resumed); each stream's delay from the write to its ``change`` event, and whether
   every stream saw every change.

Prints the figures with the machine's load (2 shared cores: compare ratios).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
from propagation import Board  # noqa: E402
from propagation import _connect  # noqa: E402
from propagation import _wait  # noqa: E402
from sdk_http import lua_script  # noqa: E402
from snapshot_build import seed  # noqa: E402
from vs_unleash import _find  # noqa: E402  (wrk's output, read as vs_unleash reads it)
from vs_unleash import _ms  # noqa: E402

from flagsvc.storage.db import Database  # noqa: E402
from tests.live import Balancer  # noqa: E402
from tests.live import LiveService  # noqa: E402
from tests.live import free_port  # noqa: E402

PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
DATABASE = "flagsvc_bench_scale"
FLAG = "flag-00000"


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {loadavg()}] {text}", flush=True)


def fresh_database() -> str:
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return f"postgresql+psycopg://{PG_SERVER.split('://', 1)[1]}/{DATABASE}"


@contextmanager
def private_redis() -> Iterator[str]:
    port = free_port()
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while (
            subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout
            != b"PONG\n"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def transactions() -> int:
    """Transactions committed and rolled back on the bench database so far."""
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        time.sleep(1.2)  # backends report their counts at most once a second
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (DATABASE,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def wrk(url: str, headers: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    script = lua_script("GET", headers, None)
    command = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    try:
        out = subprocess.run(
            [*command, "-s", script, url], capture_output=True, text=True, check=True
        ).stdout
    finally:
        os.unlink(script)
    errors = int(_find(r"Non-2xx or 3xx responses: (\d+)", out, "0"))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {
        "requests": int(_find(r"(\d+) requests in", out)),
        "rps": float(_find(r"Requests/sec:\s+([\d.]+)", out)),
        "p50": _ms(_find(r"50%\s+([\d.]+\w+)", out)),
        "p99": _ms(_find(r"99%\s+([\d.]+\w+)", out)),
        "errors": errors,
    }


def streams_open(service: LiveService) -> int:
    status, body = service.get("/metrics")
    assert status == 200
    lines = body.decode().splitlines()
    return int(
        sum(float(line.split()[1]) for line in lines if line.startswith("flagsvc_sdk_streams_open"))
    )


def revalidation(
    balancer: Balancer, services: list[LiveService], key: str, args: argparse.Namespace
) -> dict[str, float]:
    """304s through nginx and on one instance; database transactions per 304."""
    fetched = httpx.get(
        f"{balancer.url}/sdk/v1/snapshot", headers={"Authorization": f"Bearer {key}"}
    )
    fetched.raise_for_status()
    headers = {"Authorization": f"Bearer {key}", "If-None-Match": fetched.headers["ETag"]}
    for service in services:  # every instance has the snapshot before we count
        assert httpx.get(f"{service.url}/sdk/v1/snapshot", headers=headers).status_code == 304
    before = transactions()
    time.sleep(args.duration)
    idle = transactions() - before
    progress(f"idle {args.duration}s: {idle} database transactions (background)")
    before = transactions()
    three = wrk(f"{balancer.url}/sdk/v1/snapshot", headers, args)
    during = transactions() - before
    progress(f"304s through nginx to three instances: {three}")
    one = wrk(f"{services[0].url}/sdk/v1/snapshot", headers, args)
    progress(f"304s on one instance directly: {one}")
    return {
        "three_rps": three["rps"],
        "three_p50": three["p50"],
        "three_p99": three["p99"],
        "three_errors": three["errors"],
        "one_rps": one["rps"],
        "one_p99": one["p99"],
        "requests": three["requests"],
        "during": during,
        "idle": idle,
    }


def delivery(
    admin: httpx.Client,
    balancer: Balancer,
    services: list[LiveService],
    key: str,
    args: argparse.Namespace,
) -> dict[str, object]:
    """Streams through nginx, changes through nginx: delay to each stream, and coverage."""

    async def run() -> tuple[list[float], list[int], int]:
        board = Board()
        transports = await _connect(balancer.port, key, board, args.streams)
        spread = [streams_open(service) for service in services]
        delays: list[float] = []
        complete = 0
        for n in range(args.changes):
            before = set(board.arrivals)
            started = time.perf_counter()
            kill = "kill" if n % 2 == 0 else "resume"
            path = f"/api/v1/flags/{FLAG}/environments/production/{kill}"
            response = await asyncio.to_thread(admin.post, path, json={})
            response.raise_for_status()

            def everyone(before: set[int] = before) -> bool:
                fresh = set(board.arrivals) - before
                return any(len(board.arrivals[v]) >= args.streams for v in fresh)

            if await _wait(everyone, 30):
                complete += 1
            version = max(set(board.arrivals) - before, default=None)
            if version is not None:
                delays += [t - started for t in board.arrivals[version]]
            await asyncio.sleep(0.5)
        for transport in transports:
            transport.close()
        return delays, spread, complete

    delays, spread, complete = asyncio.run(run())
    ordered = sorted(delays)
    return {
        "spread": spread,
        "complete": complete,
        "p50": statistics.median(ordered) * 1000,
        "p99": ordered[int(len(ordered) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=200)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    with private_redis() as redis_url:
        url = fresh_database()
        first = LiveService(url, redis_url)
        first.admin_token = first.cli("init")
        seed(Database(url), args.flags)
        services = [first.start()]
        try:
            for _ in range(2):
                services.append(LiveService(url, redis_url).start())
            with Balancer([s.port for s in services]) as balancer:
                measure(services, balancer, args)
        finally:
            for service in services:
                service.stop()


def measure(services: list[LiveService], balancer: Balancer, args: argparse.Namespace) -> None:
    first = services[0]
    assert first.admin_token
    key = first.sdk_key("production")
    progress(f"three instances on ports {[s.port for s in services]}, nginx on {balancer.port}")
    figures = revalidation(balancer, services, key, args)
    admin = httpx.Client(
        base_url=balancer.url, headers={"Authorization": f"Bearer {first.admin_token}"}, timeout=30
    )
    with admin:
        streams = delivery(admin, balancer, services, key, args)
    per_304 = max(figures["during"] - figures["idle"], 0) / max(figures["requests"], 1)
    print(
        f"\n{args.flags} flags; load {loadavg()}\n"
        f"304 through nginx, 3 instances: {figures['three_rps']:.0f} req/s, "
        f"p50 {figures['three_p50']:.1f} ms, p99 {figures['three_p99']:.1f} ms, "
        f"{figures['three_errors']:.0f} errors; one instance directly: "
        f"{figures['one_rps']:.0f} req/s, p99 {figures['one_p99']:.1f} ms "
        f"({figures['three_rps'] / figures['one_rps']:.2f}x)\n"
        f"database: {figures['during']:.0f} transactions during {figures['requests']:.0f} "
        f"304s, {figures['idle']:.0f} in as long idle: {per_304:.4f} per 304\n"
        f"{args.streams} streams through nginx, per instance {streams['spread']}: "
        f"{streams['complete']}/{args.changes} changes reached every stream; "
        f"write to event p50 {streams['p50']:.0f} ms, p99 {streams['p99']:.0f} ms",
        flush=True,
    )


if __name__ == "__main__":
    main()
