"""What stalls flagsvc's one gevent worker under the vs_unleash workload, seen from inside.

    .venv/bin/python bench/worker_stalls.py [--rounds 4] [--duration 8] [--streams 1000]
                                            [--changes 10] [--no-boot-hook]

Starts flagsvc as ``flagsvc serve`` does (one gevent worker, no Redis, PostgreSQL) but
with the probes of ``bench/worker_probe_conf.py``, seeds it as ``vs_unleash.py`` does
(200 flags, a 10-member cohort each, 50 % rollout), then runs ``wrk -t2 -c50`` on the
304 revalidation for ``--rounds`` rounds and opens ``--streams`` streams for
``--changes`` changes. For each round it prints wrk's p50 / p99 beside what the worker
saw: its slowest requests, the event loop's late wakes split into CPU in the worker /
waiting for a CPU / off the CPU, and every garbage collection. For the streams: per
change, commit to the announcer's build, the build, and the direct write to every stream.

The figure that matters on a shared machine is the worker's own share: loop time held
on the CPU by the worker. Waiting for a CPU is the machine's (other processes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from propagation import Board  # noqa: E402
from propagation import _connect  # noqa: E402
from propagation import _wait  # noqa: E402
from propagation import percentile  # noqa: E402
from vs_unleash import FLAGSVC_DATABASE  # noqa: E402
from vs_unleash import Flagsvc  # noqa: E402
from vs_unleash import fresh_database  # noqa: E402
from vs_unleash import group_pids  # noqa: E402
from vs_unleash import loadavg  # noqa: E402
from vs_unleash import run_wrk  # noqa: E402

from tests.live import LiveService  # noqa: E402


class ProbedService(LiveService):
    """``flagsvc serve``'s gunicorn command, with the probe configuration."""

    def launch(self) -> None:
        argv = [sys.executable, "-m", "gunicorn", "--config", "python:worker_probe_conf"]
        argv += ["--bind", f"127.0.0.1:{self.port}", "flagsvc.wsgi:app"]
        self.env["PYTHONPATH"] = os.pathsep.join([str(BENCH_DIR), self.env.get("PYTHONPATH", "")])
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def between(
    events: list[dict[str, Any]], kind: str, start: float, end: float
) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] == kind and start <= e["at"] <= end]


def _at(event: dict[str, Any], start: float) -> str:
    return f"@{event['at'] - start:.2f}s"


def _lateness(lags: list[dict[str, Any]], start: float) -> str:
    """The loop's late wakes: how many, their sum split three ways, the worst five."""
    total = {k: sum(e[k] for e in lags) for k in ("ms", "cpu", "runqueue", "off")}
    worst = sorted(lags, key=lambda e: -e["ms"])[:5]
    return (
        f"loop late >2 ms: {len(lags)} times, {total['ms']:.0f} ms in all (worker on a CPU"
        f" {total['cpu']:.0f}, waiting for one {total['runqueue']:.0f}, off CPU"
        f" {total['off']:.0f}); worst: "
        + ", ".join(
            f"{e['ms']:.0f} (cpu {e['cpu']:.0f} wait {e['runqueue']:.0f}) {_at(e, start)}"
            for e in worst
        )
    )


def _collections(gcs: list[dict[str, Any]]) -> str:
    by_gen: dict[int, list[dict[str, Any]]] = {}
    for collection in gcs:
        by_gen.setdefault(collection["gen"], []).append(collection)
    return ", ".join(
        f"gen{gen} x{len(runs)} max {max(r['ms'] for r in runs):.1f} ms"
        f" (cpu max {max(r.get('cpu', 0) for r in runs):.1f})"
        for gen, runs in sorted(by_gen.items())
    )


def report_round(
    name: str, run: Any, events: list[dict[str, Any]], start: float, end: float
) -> None:
    """wrk's figures beside the worker's: request times, the loop's lateness, collections."""
    requests = between(events, "req", start, end)
    server = sorted(r["ms"] for r in requests)
    print(
        f"{name}: wrk {run.rps:.0f} req/s p50 {run.p50:.1f} p99 {run.p99:.1f} ms, load"
        f" {run.load}; server p99 {percentile(server, 99) if server else 0:.2f} ms"
        f" ({len(server)} requests)"
    )
    slow = sorted(requests, key=lambda r: -r["ms"])[:5]
    print(
        "   slowest: "
        + ", ".join(f"{r['ms']:.1f} ms (cpu {r['cpu']:.1f}) {_at(r, start)}" for r in slow)
    )
    print("   " + _lateness(between(events, "lag", start, end), start))
    print("   gc: " + _collections(between(events, "gc", start, end)))


def report_streams(
    events: list[dict[str, Any]], start: float, end: float, every: list[float]
) -> None:
    """Per change: the announcer's build and the direct write; then the whole phase."""
    delivers = between(events, "deliver", start, end)
    for prepare in between(events, "prepare", start, end):
        inside = [d for d in delivers if prepare["start"] <= d["start"] <= prepare["at"]]
        print(
            f"   version {prepare['args']}: prepare {prepare['ms']:.1f} ms (cpu"
            f" {prepare['cpu_ms']:.1f}, gc {prepare['gc_ms']:.1f}), of which the direct"
            f" write {sum(d['ms'] for d in inside):.1f} ms (cpu"
            f" {sum(d['cpu_ms'] for d in inside):.1f}) to"
            f" {sum(d['result'] or 0 for d in inside)} streams"
        )
    print("   " + _lateness(between(events, "lag", start, end), start))
    ms = [v * 1000 for v in every]
    print(f"   event on each stream: p50 {percentile(ms, 50):.1f} p99 {percentile(ms, 99):.1f} ms")
    print("   gc: " + _collections(between(events, "gc", start, end)))


def heap(service: LiveService, out: Path, label: str) -> None:
    """Ask the worker for its heap (SIGUSR2) and print what a full collection walks."""
    worker = [p for p in group_pids(service.process.pid) if p != service.process.pid]
    before = len([e for e in read_events(out) if e["kind"] == "heap"])
    for pid in worker:
        os.kill(pid, signal.SIGUSR2)
    deadline = time.time() + 10
    while time.time() < deadline:
        reports = [e for e in read_events(out) if e["kind"] == "heap"]
        if len(reports) > before:
            report = reports[-1]
            print(
                f"heap {label}: {report['tracked']} objects tracked (frozen {report['frozen']}),"
                f" full collection {report['full_ms']:.1f} ms"
                f" (cpu {report.get('full_cpu_ms', 0):.1f}),"
                f" collected {report['collected']}"
            )
            print("   types: " + ", ".join(f"{n} {c}" for n, c in report["top"][:20]))
            print("   modules: " + ", ".join(f"{n} {c}" for n, c in report["modules"][:10]))
            return
        time.sleep(0.2)


def streams_then(server: Any, port: int, sdk_key: str, args: Any, then: Any) -> list[float]:
    """``vs_unleash.many_streams``, and ``then()`` before the streams close."""

    async def run() -> list[float]:
        board = Board()
        transports = await _connect(port, sdk_key, board, args.streams, per_address=100)
        every: list[float] = []
        for _ in range(args.changes):
            before = set(board.arrivals)
            started = time.perf_counter()
            await asyncio.to_thread(server.change)

            def everyone(before: set[int] = before) -> bool:
                fresh = set(board.arrivals) - before
                return any(len(board.arrivals[v]) >= args.streams for v in fresh)

            assert await _wait(everyone, 30), "not every stream saw the change"
            version = next(iter(set(board.arrivals) - before))
            every += [t - started for t in board.arrivals[version]]
            await asyncio.sleep(0.2)
        await asyncio.to_thread(then)
        for transport in transports:
            transport.close()
        return every

    return asyncio.run(run())


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument(
        "--boot",
        choices=["full", "no-warm-up", "none"],
        default="full",
        help="the worker's boot hook: flagsvc's, without its warm-up, or none at all",
    )
    parser.add_argument("--heap", action="store_true", help="heap reports between phases")
    parser.add_argument("--monitor", action="store_true", help="gevent's monitor thread (costly)")
    parser.add_argument("--blocking-ms", type=float, default=20, help="gevent monitor threshold")
    return parser.parse_args()


def start_probed(args: argparse.Namespace, out: Path) -> ProbedService:
    env = {
        "FLAGSVC_PROBE_OUT": str(out),
        "FLAGSVC_PROBE_BOOT": args.boot,
        "GEVENT_MONITOR_THREAD_ENABLE": "1" if args.monitor else "0",
        "GEVENT_MAX_BLOCKING_TIME": str(args.blocking_ms / 1000),
    }
    service = ProbedService(fresh_database(FLAGSVC_DATABASE), env=env)
    service.admin_token = service.cli("init")
    service.start()
    return service


def measure(args: argparse.Namespace, service: ProbedService, out: Path) -> None:
    flagsvc = Flagsvc()
    flagsvc.service = service
    print(f"[{time.strftime('%H:%M:%S')} load {loadavg()}] seeding", flush=True)
    flagsvc.seed()
    time.sleep(2)
    server = flagsvc.server()
    if args.heap:
        heap(service, out, "after seeding")
    for number in range(args.rounds):
        start = time.time()
        run = run_wrk(server, server.revalidate, args)
        end = time.time()
        time.sleep(0.6)  # the probe flushes every 0.5 s
        report_round(f"round {number + 1}", run, read_events(out), start, end)
    if args.heap:
        heap(service, out, "after the 304 rounds")
    if args.changes:
        start = time.time()
        then = (lambda: heap(service, out, "with streams open")) if args.heap else (lambda: None)
        every = streams_then(server, service.port, flagsvc.sdk_key, args, then)
        end = time.time()
        time.sleep(0.6)
        print(f"{args.streams} streams, {args.changes} changes, load {loadavg()}")
        report_streams(read_events(out), start, end, every)


def main() -> None:
    args = arguments()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    out = Path(f"/tmp/flagsvc-probe-{os.getpid()}.jsonl")
    service = start_probed(args, out)
    try:
        measure(args, service, out)
    finally:
        service.stop()
        blocked = service.logs().count("appears to be blocked")
        print(f"service log: {service.log_path}; events: {out}; monitor reports: {blocked}")


if __name__ == "__main__":
    main()
