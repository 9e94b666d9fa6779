"""What webhooks add to the write that causes a notification, on PostgreSQL.

    .venv/bin/python bench/webhooks.py [--database-url postgresql://…] [--rounds 30] [--writes 20]

The write is ``POST /api/v1/flags/<key>/environments/staging/stage`` into early access,
through the Flask test client in-process, so the figures are the service's own time,
not a network's (moving the flag back to ``off`` between writes is not timed). Each
round times a block of writes in each of three modes, in turn (each mode first in one
round of three):

- no webhook configured: the baseline (the outbox's only cost is finding none);
- three webhooks on every event (two JSON, one Slack), the worker paused: what the
  write itself pays, writing three delivery rows in its transaction;
- the same with the worker delivering meanwhile, in its own process as ``serve
  --with-scheduler`` runs it, to a receiver in that process on 127.0.0.1: what the
  worker's claims, attempts and log writes cost the writes on the same machine.

Between blocks the worker drains what is pending, untimed. Besides each whole write it
times the outbox's share inside the transaction (finding subscribers, building and
flushing the rows). Target: the p99 with webhooks at most 5 ms above the baseline's,
in the same run. The bench owns its database (created if missing; ``public`` dropped
and re-migrated).
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

from sqlalchemy import func
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import flow_report

from flagsvc import create_app
from flagsvc.domain.roles import Role
from flagsvc.services import credentials
from flagsvc.services import environments
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Change
from flagsvc.services.webhooks import outbox
from flagsvc.services.webhooks import worker
from flagsvc.services.webhooks.sender import Sender
from flagsvc.storage.db import Database
from flagsvc.storage.models import WebhookDelivery

TARGET_MS = 5.0


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real receivers answer
    received: Any = None  # a shared counter, set in the receiving process

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with _Quiet.received.get_lock():
            _Quiet.received.value += 1
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def reset_database(url: str) -> str:
    """``flow_report``'s reset (create if needed, migrate an empty schema); the SQLAlchemy URL."""
    flow_report.reset_database(url)
    return flow_report._sqlalchemy_url(url)


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

    def drain(self) -> None:
        """Wait until the worker has sent everything pending (untimed)."""
        while True:
            with self.state.db.read() as session:
                left = session.scalar(
                    select(func.count())
                    .select_from(WebhookDelivery)
                    .where(WebhookDelivery.status == "pending")
                )
            if not left:
                return
            time.sleep(0.05)

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


def deliver(url: str, port: int, stop: Any, paused: Any, received: Any) -> None:
    """The worker in its own process, as ``serve --with-scheduler`` runs it beside
    gunicorn's workers, and the receiver with it (elsewhere in production: not in the
    timed process). Polls every 50 ms while it has nothing to do; ``paused``: sends nothing."""
    _Quiet.received = received
    server = ThreadingHTTPServer(("127.0.0.1", port), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    database = Database(url)
    sender = Sender(5.0, allow_private=True)
    while not stop.is_set():
        if paused.is_set() or not worker.run_due(database, sender, lambda: datetime.now(UTC)):
            stop.wait(0.05)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


MODES = ("no webhooks (baseline)", "3 webhooks, worker paused", "3 webhooks + worker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/bench_webhooks"
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--writes", type=int, default=20, help="flags; each round moves half")
    args = parser.parse_args()
    bench = Bench(reset_database(args.database_url), args.writes)
    bench.timed_writes(bench.flags)  # warm up: caches, pool, plans
    timer = OutboxTimer()
    figures: dict[str, tuple[list[float], list[float]]] = {mode: ([], []) for mode in MODES}
    spawn = multiprocessing.get_context("spawn")
    stop, paused, received = spawn.Event(), spawn.Event(), spawn.Value("i", 0)
    delivering = spawn.Process(
        target=deliver, args=(bench.url, bench.port, stop, paused, received), daemon=True
    )
    delivering.start()
    try:
        for number in range(args.rounds):
            block = bench.flags[number % 2 :: 2]
            for mode in MODES[number % 3 :] + MODES[: number % 3]:  # each mode first in turn
                bench.configure(mode != MODES[0])
                if mode == MODES[1]:
                    paused.set()
                timer.take()
                figures[mode][0].extend(bench.timed_writes(block))
                figures[mode][1].extend(timer.take())
                paused.clear()
                bench.drain()  # the next block starts with nothing left to send
    finally:
        stop.set()
        delivering.join(10)
    report(figures, received.value, args)


def _line(name: str, values: list[float]) -> str:
    figures = [percentile(values, share) for share in (0.5, 0.95, 0.99)]
    shown = " ".join(f"{value:8.2f}" for value in [*figures, statistics.fmean(values)])
    return f"{name:40} {shown}"


def report(figures: dict[str, tuple[list[float], list[float]]], delivered: int, args: Any) -> None:
    baseline, hooked = figures[MODES[0]][0], figures[MODES[2]][0]
    print(f"{args.rounds} rounds, each a block of {args.writes // 2} writes per mode, PostgreSQL;")
    print(f"{len(baseline)} timed writes per mode; load average {os.getloadavg()[0]:.1f}")
    print(f"{'':40} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for mode in MODES:
        print(_line(f"write, {mode}", figures[mode][0]))
    for mode in MODES:
        print(_line(f"  outbox share, {mode}", figures[mode][1]))
    for mode in MODES[1:]:
        added = percentile(figures[mode][0], 0.99) - percentile(baseline, 0.99)
        ratio = percentile(figures[mode][0], 0.99) / percentile(baseline, 0.99)
        print(f"{mode}: {added:+.2f} ms at p99 over the baseline ({ratio:.2f}x)")
    own = percentile(figures[MODES[2]][1], 0.99) - percentile(figures[MODES[0]][1], 0.99)
    print(f"the outbox's own share of the write: {own:+.2f} ms at p99 over the baseline's")
    print(f"target: at most +{TARGET_MS:g} ms at p99; notifications delivered: {delivered}")
    added = percentile(hooked, 0.99) - percentile(baseline, 0.99)
    print("MET" if added <= TARGET_MS else "NOT MET (whole write with the worker; see the load)")


if __name__ == "__main__":
    main()
