"""What webhooks add to the write that causes a notification, on PostgreSQL.

    .venv/bin/python bench/webhooks.py [--database-url postgresql://…] [--rounds 10] [--writes 60]

The write is ``POST /api/v1/flags/<key>/environments/staging/stage`` into early access
(the heaviest notifying change: the outbox also asks the promise board whether the flag
is safe to promise), through the Flask test client in-process, so the figures are the
service's own time, not a network's. Each round times the same writes twice,
interleaved: once with no webhook configured (the baseline: the outbox's only cost is
finding none), once with three webhooks subscribed to every event (two JSON, one
Slack) *and the worker delivering them meanwhile* to a receiver on 127.0.0.1 (so the
worker's claims and log writes compete with the timed writes, as in production).
Moving the flag back to ``off`` between writes is not timed. Target: the p99 with
webhooks at most 5 ms above the baseline's p99, measured in the same run.

The bench owns its database (created if missing; ``public`` dropped and re-migrated).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import statistics
import sys
import threading
import time
from datetime import UTC
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flagsvc import create_app
from flagsvc.domain.roles import Role
from flagsvc.services import credentials
from flagsvc.services import environments
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Change
from flagsvc.services.webhooks import outbox
from flagsvc.services.webhooks import worker
from flagsvc.services.webhooks.sender import Sender
from flagsvc.storage import migrate
from flagsvc.storage.db import Database

TARGET_MS = 5.0


class _Quiet(BaseHTTPRequestHandler):
    received: Any = None  # a shared counter, set in the receiving process

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with _Quiet.received.get_lock():
            _Quiet.received.value += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def reset_database(url: str) -> str:
    """Create the bench database if needed, migrate an empty schema; the SQLAlchemy URL."""
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    sqlalchemy_url = "postgresql+psycopg://" + url.split("://", 1)[1]
    migrate.upgrade(sqlalchemy_url)
    return sqlalchemy_url


class Bench:
    """The app, an admin client, the flags it moves and the webhooks it adds and removes."""

    def __init__(self, url: str, flags: int) -> None:
        self.url = url
        self.app = create_app(
            {"database_url": url, "redis_url": None, "webhook_allow_private": True}
        )
        self.state = self.app.extensions["flagsvc"]
        change = Change(SYSTEM, datetime.now(UTC), "bench")
        with self.state.db.write() as session:
            environments.ensure_default_environments(session, change)
            _token, secret = credentials.create_token(session, change, "bench", Role.ADMIN)
        self.client = self.app.test_client()
        self.headers = {"Authorization": f"Bearer {secret}"}
        self.flags = [f"bench-{n}" for n in range(flags)]
        self._make_flags()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.receiver = f"http://127.0.0.1:{self.port}/hook"

    def call(self, method: str, path: str, json: Any = None) -> Any:
        response = self.client.open(path, method=method, json=json, headers=self.headers)
        assert response.status_code < 300, (path, response.status_code, response.json)
        return response

    def _make_flags(self) -> None:
        objective = self.call(
            "POST", "/api/v1/objectives", {"title": "O", "period": "2026-Q4", "owner": "b"}
        ).json
        key_result = self.call(
            "POST",
            f"/api/v1/objectives/{objective['id']}/key-results",
            {"title": "K", "metric": "m", "baseline": 0, "target": 1},
        ).json
        for key in self.flags:
            body = {"key": key, "name": key, "flow_item": "feature"}
            self.call("POST", "/api/v1/flags", {**body, "key_result_id": key_result["id"]})

    def configure(self, on: bool) -> None:
        """Three webhooks on every event (two JSON, one Slack), or none."""
        hooks = self.call("GET", "/api/v1/webhooks").json
        if on == bool(hooks):
            return
        if not on:
            for hook in hooks:
                self.call("DELETE", f"/api/v1/webhooks/{hook['id']}")
            return
        for name, fmt in (("a", "json"), ("b", "json"), ("c", "slack")):
            url = f"{self.receiver}/{name}"
            self.call("POST", "/api/v1/webhooks", {"name": name, "url": url, "format": fmt})

    def timed_writes(self, flags: list[str]) -> list[float]:
        """Each flag into early access (timed), then back off (not timed)."""
        took = []
        for key in flags:
            path = f"/api/v1/flags/{key}/environments/staging/stage"
            started = time.perf_counter()
            self.call("POST", path, {"stage": "early_access"})
            took.append((time.perf_counter() - started) * 1000)
            self.call("POST", path, {"stage": "off"})
        return took


class OutboxTimer:
    """Times the outbox's share of each write: finding the subscribers and writing (and
    flushing) the delivery rows, inside the transaction of the change."""

    def __init__(self) -> None:
        self.took: list[float] = []
        self._original = outbox.from_audit
        outbox.from_audit = self._timed  # audit.record calls it through the module

    def _timed(self, session: Any, event: Any) -> int:
        started = time.perf_counter()
        written = self._original(session, event)
        session.flush()
        if event.action == "flag.stage_changed" and event.after.get("stage") == "early_access":
            self.took.append((time.perf_counter() - started) * 1000)
        return written

    def take(self) -> list[float]:
        took, self.took = self.took, []
        return took


def deliver(url: str, port: int, stop: Any, received: Any) -> None:
    """The worker in its own process, as ``serve --with-scheduler`` runs it beside
    gunicorn's workers (polling every 50 ms, to compete harder than its default 1 s),
    and the receiver with it (elsewhere in production: not in the timed process)."""
    _Quiet.received = received
    server = ThreadingHTTPServer(("127.0.0.1", port), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    database = Database(url)
    sender = Sender(5.0, allow_private=True)
    worker.run_forever(database, sender, lambda: datetime.now(UTC), stop, 0.05)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/bench_webhooks"
    )
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--writes", type=int, default=20, help="flags; each round moves half")
    args = parser.parse_args()
    bench = Bench(reset_database(args.database_url), args.writes)
    bench.timed_writes(bench.flags)  # warm up: caches, pool, plans
    timer = OutboxTimer()
    modes: dict[bool, tuple[list[float], list[float]]] = {False: ([], []), True: ([], [])}
    spawn = multiprocessing.get_context("spawn")
    stop, received = spawn.Event(), spawn.Value("i", 0)
    delivering = spawn.Process(
        target=deliver, args=(bench.url, bench.port, stop, received), daemon=True
    )
    delivering.start()
    try:
        for number in range(args.rounds):
            block = bench.flags[number % 2 :: 2]
            for on in (False, True) if number % 2 else (True, False):
                bench.configure(on)
                timer.take()
                modes[on][0].extend(bench.timed_writes(block))
                modes[on][1].extend(timer.take())
    finally:
        stop.set()
        delivering.join(10)
    report(modes, received.value, args)


def _line(name: str, values: list[float]) -> str:
    figures = [percentile(values, share) for share in (0.5, 0.95, 0.99)]
    shown = " ".join(f"{value:8.2f}" for value in [*figures, statistics.fmean(values)])
    return f"{name:34} {shown}"


def report(modes: dict[bool, tuple[list[float], list[float]]], delivered: int, args: Any) -> None:
    (without, outbox_without), (with_hooks, outbox_with) = modes[False], modes[True]
    print(f"{args.rounds} interleaved blocks of {args.writes // 2} writes per mode, PostgreSQL:")
    print(f"{len(without)} timed writes per mode; load average {os.getloadavg()[0]:.1f}")
    print(f"{'':34} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    print(_line("write, no webhooks (baseline)", without))
    print(_line("write, 3 webhooks + worker", with_hooks))
    print(_line("  its outbox share, no webhooks", outbox_without))
    print(_line("  its outbox share, 3 webhooks", outbox_with))
    added = percentile(with_hooks, 0.99) - percentile(without, 0.99)
    ratio = percentile(with_hooks, 0.99) / percentile(without, 0.99)
    own = percentile(outbox_with, 0.99) - percentile(outbox_without, 0.99)
    print(f"whole write: webhooks add {added:+.2f} ms at p99 ({ratio:.2f}x the baseline)")
    print(f"outbox share: webhooks add {own:+.2f} ms at p99")
    print(f"target: at most +{TARGET_MS:g} ms at p99")
    print(f"notifications the receiver got meanwhile: {delivered}")
    print("MET" if added <= TARGET_MS else "NOT MET on the whole write (see the load)")


if __name__ == "__main__":
    main()
