"""A 1,000,000-member cohort: snapshot download and load time, SDK memory, evaluation speed.

    .venv/bin/python bench/cohort_scale.py [--members 1000000] [--evaluations 300000]

The snapshot JSON is built in-process and served over real HTTP by a small local
server (127.0.0.1), so the timing covers what a client does at start: download, parse,
validate, compile, swap. Memory is the process's RSS growth across that, and (in a
second load) Python's own allocations traced by ``tracemalloc``. Evaluation speed of an
early-access flag on that cohort is compared with the same flag on a 10-member cohort,
for members and non-members: set membership is O(1), so it should be unchanged.
"""

from __future__ import annotations

import argparse
import gc
import json
import threading
import time
import tracemalloc
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

from flagsvc_sdk import Client


def _flag(flag_key: str, cohort_key: str) -> dict[str, object]:
    return {
        "key": flag_key, "salt": "s", "stage": "early_access", "rollout_percent": 0,
        "killed": False, "cohorts": [cohort_key], "exclusions": [],
    }  # fmt: skip


def _cohort(cohort_key: str, size: int) -> dict[str, object]:
    members = [f"user-{i}" for i in range(size)]
    return {"key": cohort_key, "members": members, "rules": [], "opt_in": True}


def snapshot_json(members: int) -> bytes:
    """Two flags in early access: one on a ``members``-strong cohort, one on 10 users."""
    doc = {
        "spec_version": 1,
        "environment": "production",
        "version": 1,
        "flags": {"big-flag": _flag("big-flag", "big"), "small-flag": _flag("small-flag", "small")},
        "cohorts": {"big": _cohort("big", members), "small": _cohort("small", 10)},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _handler(body: bytes) -> type[BaseHTTPRequestHandler]:
    """A request handler serving ``body`` as the snapshot, and 404 for anything else."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if not self.path.endswith("/snapshot"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serving(body: bytes) -> Iterator[str]:
    """Serve ``body`` at ``/sdk/v1/snapshot`` on a free local port; yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(body))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


def start_client(url: str) -> tuple[Client, float]:
    """A polling-only client (the test server has no stream); seconds until it is ready."""
    started = time.perf_counter()
    client = Client(url, "k", stream=False, poll_interval=3600, send_metrics=False, timeout=60)
    assert client.wait_until_ready(120), "the snapshot did not load"
    return client, time.perf_counter() - started


def rate(
    check: Callable[[str, dict[str, str]], bool], contexts: list[dict[str, str]], flag: str
) -> float:
    """Best-of-3 evaluations per second."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for context in contexts:
            check(flag, context)
        best = min(best, time.perf_counter() - started)
    return len(contexts) / best


def speeds(client: Client, members: int, count: int) -> dict[str, float]:
    """``is_enabled`` rates for members and non-members of each cohort."""
    inside = [{"key": f"user-{i % members}"} for i in range(count)]
    inside_small = [{"key": f"user-{i % 10}"} for i in range(count)]
    outside = [{"key": f"stranger-{i}"} for i in range(count)]
    assert client.is_enabled("big-flag", inside[-1]) and not client.is_enabled(
        "big-flag", outside[0]
    )
    check = client.is_enabled
    return {
        "1M cohort, members": rate(check, inside, "big-flag"),
        "1M cohort, non-members": rate(check, outside, "big-flag"),
        "10 cohort, members": rate(check, inside_small, "small-flag"),
        "10 cohort, non-members": rate(check, outside, "small-flag"),
    }


def traced_load(url: str) -> tuple[int, int]:
    """Python allocations (current, peak) while a second client loads the snapshot."""
    tracemalloc.start()
    client, _ = start_client(url)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    client.close()
    return current, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--evaluations", type=int, default=300_000)
    args = parser.parse_args()
    body = snapshot_json(args.members)
    with serving(body) as url:
        gc.collect()
        before = rss_bytes()
        client, seconds = start_client(url)
        gc.collect()
        grown = rss_bytes() - before
        with client:
            results = speeds(client, args.members, args.evaluations)
        traced = traced_load(url)
    report(args.members, len(body), seconds, grown, traced, results)


def report(
    members: int,
    size: int,
    seconds: float,
    grown: int,
    traced: tuple[int, int],
    results: dict[str, float],
) -> None:
    mib = 1024 * 1024
    print(f"cohort of {members:,} members; snapshot JSON {size / mib:.1f} MiB")
    print(f"download + parse + validate + compile + swap: {seconds:.2f} s")
    print(f"RSS growth with the snapshot held: {grown / mib:.0f} MiB")
    print(
        f"tracemalloc while loading: {traced[0] / mib:.0f} MiB held, {traced[1] / mib:.0f} MiB peak"
    )
    for name, value in results.items():
        print(f"is_enabled, {name:<24} {value:>12,.0f} eval/s")
    small = results["10 cohort, members"]
    big = results["1M cohort, members"]
    print(f"\n1M-member cohort vs 10-member cohort (members): {big / small:.2f}x the speed")
    outside = results["1M cohort, non-members"] / results["10 cohort, non-members"]
    print(f"1M-member cohort vs 10-member cohort (non-members): {outside:.2f}x the speed")


if __name__ == "__main__":
    main()
