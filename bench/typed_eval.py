"""Local ``get_string`` speed on a typed flag: flagsvc vs a floor, in one run.

    .venv/bin/python bench/typed_eval.py [--contexts 1000000] [--rounds 9]

The flag: a string flag (variations ``v1`` / ``v2`` / ``v2-beta``) whose early-access
cohort ``country in [NL, DE]`` serves its own variation ``v2-beta``, plus a 50 % ramp
serving ``v2``, everyone else ``v1``. Distinct contexts, one user key each, a sixth per
country (the mix of ``bench/sdk_eval.py``).

The floor is a bare function doing what any local evaluator of this flag must at least
do per call: one dict lookup, one attribute test against a set, one ``mmh3.hash``, and
pick one of three values. flagsvc and the floor run in ``--rounds`` interleaved rounds
(ABBA), each round's ratio printed; figures are medians. Targets: >= 2,000,000
evaluations/s and <= 2x the floor. Run it when the machine is quiet (``uptime``); the
load is printed with the figures, and each figure twice: wall clock, and this thread's
CPU time (``time.thread_time``), which on a shared machine leaves out the time the
scheduler gave other processes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import httpx
import mmh3
from flagsvc_sdk import Client

COUNTRIES = ("NL", "DE", "US", "FR", "GB", "JP")
FLAG_KEY = "checkout-layout"
VALUES = {"v1": "classic", "v2": "v2", "v2-beta": "v2-beta"}
SNAPSHOT = {
    "spec_version": 2,
    "environment": "production",
    "version": 1,
    "flags": {
        FLAG_KEY: {
            "key": FLAG_KEY,
            "salt": "s1",
            "stage": "general",
            "rollout_percent": 50,
            "killed": False,
            "cohorts": ["eu"],
            "exclusions": [],
            "type": "string",
            "variations": VALUES,
            "on": "v2",
            "off": "v1",
            "cohort_variations": {"eu": "v2-beta"},
        }
    },
    "cohorts": {
        "eu": {
            "key": "eu",
            "members": [],
            "rules": [{"attribute": "country", "op": "in", "values": ["NL", "DE"]}],
            "opt_in": False,
        }
    },
}


def contexts(count: int) -> list[dict[str, str]]:
    return [{"key": f"user-{i}", "country": COUNTRIES[i % len(COUNTRIES)]} for i in range(count)]


def client() -> Client:
    """A real client on the snapshot, served once by a mock transport (no network)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/snapshot"):
            return httpx.Response(200, json=SNAPSHOT)
        return httpx.Response(404)

    flags = Client(
        "http://bench.invalid",
        "k",
        transport=httpx.MockTransport(handler),
        stream=False,
        poll_interval=3600,
        send_metrics=False,
    )
    assert flags.wait_until_ready(5), "snapshot did not load"
    return flags


def flagsvc_run(flags: Client, people: list[dict[str, str]]) -> Callable[[], int]:
    get_string = flags.get_string

    def run() -> int:
        beta = 0
        for context in people:
            beta += get_string(FLAG_KEY, context, "v0") == "v2-beta"
        return beta

    return run


def floor_run(people: list[dict[str, str]]) -> Callable[[], int]:
    """The least work per call: a lookup, a set test, a hash, one of three values."""
    flags = {FLAG_KEY: (frozenset({"NL", "DE"}), f"{FLAG_KEY}:s1:", "v2-beta", "v2", "classic")}
    hash_ = mmh3.hash

    def floor(flag_key: str, context: dict[str, str], default: str) -> str:
        values, prefix, hit, on, off = flags[flag_key]
        if context.get("country") in values:
            return hit
        return on if hash_(prefix + context["key"], 0, False) % 10_000 < 5_000 else off

    def run() -> int:
        beta = 0
        for context in people:
            beta += floor(FLAG_KEY, context, "v0") == "v2-beta"
        return beta

    return run


def timed(run: Callable[[], int]) -> tuple[float, float]:
    """Wall seconds and this thread's CPU seconds for one pass (on a shared machine the
    wall time also holds the time the scheduler gave other processes; CPU time does not)."""
    started, cpu = time.perf_counter(), time.thread_time()
    run()
    return time.perf_counter() - started, time.thread_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=9)
    options = parser.parse_args()
    people = contexts(options.contexts)
    flags = client()
    ours, floor = flagsvc_run(flags, people), floor_run(people)
    assert ours() == floor(), "flagsvc and the floor must give the same answers"
    walls: dict[str, list[float]] = {"flagsvc": [], "floor": []}
    cpus: dict[str, list[float]] = {"flagsvc": [], "floor": []}
    for index in range(options.rounds):
        order = [("floor", floor), ("flagsvc", ours)]
        for name, run in order if index % 2 == 0 else reversed(order):
            wall, cpu = timed(run)
            walls[name].append(wall)
            cpus[name].append(cpu)
        b, a = walls["flagsvc"][-1], walls["floor"][-1]
        print(f"round {index + 1}: flagsvc {b:.3f} s, floor {a:.3f} s, {b / a:.2f}x "
              f"(CPU time {cpus['flagsvc'][-1] / cpus['floor'][-1]:.2f}x)")  # fmt: skip
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report("wall clock", walls, options.contexts)
    report("CPU time (this thread)", cpus, options.contexts)
    flags.close()


def report(what: str, seconds: dict[str, list[float]], count: int) -> None:
    """Medians of both, and the median of the per-round ratios."""
    ours_rate = count / statistics.median(seconds["flagsvc"])
    floor_rate = count / statistics.median(seconds["floor"])
    ratios = [b / a for b, a in zip(seconds["flagsvc"], seconds["floor"], strict=True)]
    print(f"{what}: flagsvc get_string {ours_rate / 1e6:.2f} M evaluations/s "
          f"({1e9 / ours_rate:.0f} ns); floor {floor_rate / 1e6:.2f} M/s "
          f"({1e9 / floor_rate:.0f} ns); ratio median {statistics.median(ratios):.2f}x "
          f"(rounds {min(ratios):.2f}-{max(ratios):.2f}x); targets >= 2 M/s, <= 2x")  # fmt: skip


if __name__ == "__main__":
    main()
