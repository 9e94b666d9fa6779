"""Evaluations/s through OpenFeature, per value type: the flagsvc provider vs ``InMemoryProvider``.

    .venv/bin/python bench/openfeature.py [--contexts 50000] [--rounds 9] [--types all]

Both providers sit behind the same OpenFeature API client (same domain, same hooks,
same contexts); only the provider is swapped between passes. Each round times one pass
of each, the order flipped every round (ABBA), so machine noise hits both alike; each
round's ratio is printed, and the figures are medians over the rounds.
``InMemoryProvider`` answers a static flag of the type from a dict: it is the cost of
OpenFeature itself. The flagsvc provider evaluates the real flag locally: for
``boolean`` the flag of ``bench/sdk_eval.py`` (``country in [NL, DE]`` cohort + 50 %
rollout); for ``string``, ``integer``, ``float`` and ``object`` a flag of that type
whose cohort serves its own variation, with the same 50 % ramp (on / off otherwise),
resolved with ``get_<type>_value``. Target: >= 0.9x for every type. The load average
is printed at the start and the end; every ratio twice, wall clock and this thread's
CPU time (``time.thread_time``: on a shared machine it leaves out the time the
scheduler gave other processes).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

# This file is named like the package it measures; run as a script, its folder comes
# first on sys.path and "import openfeature" would import this file. Drop the folder.
HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]

import httpx  # noqa: E402
from flagsvc_sdk import Client  # noqa: E402
from flagsvc_sdk.openfeature import FlagsvcProvider  # noqa: E402
from openfeature import api  # noqa: E402
from openfeature.client import OpenFeatureClient  # noqa: E402
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.provider import FeatureProvider  # noqa: E402
from openfeature.provider.in_memory_provider import InMemoryFlag  # noqa: E402
from openfeature.provider.in_memory_provider import InMemoryProvider  # noqa: E402

_spec = importlib.util.spec_from_file_location("sdk_eval", HERE / "sdk_eval.py")
assert _spec is not None and _spec.loader is not None
sdk_eval = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sdk_eval)  # the same flag and client as bench/sdk_eval.py
COUNTRIES, FLAG_KEY, flagsvc_client = sdk_eval.COUNTRIES, sdk_eval.FLAG_KEY, sdk_eval.flagsvc_client
DOMAIN = "bench"


TYPED: dict[str, tuple[str, dict[str, object], object]] = {
    # type: (getter, variations on / off / beta, the caller's default)
    "string": ("get_string_value", {"on": "v2", "off": "v1", "beta": "v2-beta"}, ""),
    "integer": ("get_integer_value", {"on": 50, "off": 10, "beta": 100}, 0),
    "float": ("get_float_value", {"on": 0.5, "off": 0.1, "beta": 0.9}, 0.0),
    "object": (
        "get_object_value",
        {"on": {"layout": "v2"}, "off": {"layout": "v1"}, "beta": {"layout": "v2-beta"}},
        {},
    ),
}
TYPES = ("boolean", *TYPED)


def typed_snapshot() -> dict[str, object]:
    """The boolean flag of sdk_eval.py and one flag per other type: the cohort ``eu``
    serves ``beta``, the 50 % ramp ``on``, everyone else ``off`` (spec 2)."""
    flags: dict[str, object] = {}
    for value_type, (_getter, values, _default) in TYPED.items():
        flags[f"{FLAG_KEY}-{value_type}"] = {
            **sdk_eval.SNAPSHOT["flags"][FLAG_KEY],
            "key": f"{FLAG_KEY}-{value_type}",
            "type": value_type,
            "variations": values,
            "on": "on",
            "off": "off",
            "cohort_variations": {"eu": "beta"},
        }
    return {**sdk_eval.SNAPSHOT, "spec_version": 2, "flags": flags}


def typed_client() -> Client:
    """A real client on :func:`typed_snapshot`, served once by a mock transport."""
    snapshot = typed_snapshot()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/snapshot"):
            return httpx.Response(200, json=snapshot)
        return httpx.Response(404)

    client = Client("http://bench.invalid", "k", transport=httpx.MockTransport(handler),
                    stream=False, poll_interval=3600, send_metrics=False)  # fmt: skip
    assert client.wait_until_ready(5), "snapshot did not load"
    return client


CPU_SECONDS: list[float] = []
"""This thread's CPU time of each pass, in order (``one_pass`` appends)."""


def one_pass(
    client: OpenFeatureClient, value_type: str, contexts: list[EvaluationContext]
) -> tuple[float, int]:
    """Seconds for one pass over ``contexts``, and how many answers were not the off value."""
    if value_type == "boolean":
        get, key, default, off = client.get_boolean_value, FLAG_KEY, False, False
    else:
        getter, values, default = TYPED[value_type]
        get, key, off = getattr(client, getter), f"{FLAG_KEY}-{value_type}", values["off"]
    started, cpu = time.perf_counter(), time.thread_time()
    answers = [get(key, default, context) for context in contexts]
    seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
    CPU_SECONDS.append(cpu)
    return seconds, sum(answer != off for answer in answers)


def measure(
    providers: dict[str, FeatureProvider],
    value_type: str,
    contexts: list[EvaluationContext],
    rounds: int,
) -> tuple[list[dict[str, float]], dict[str, float]]:
    """Seconds per provider for each round, and each provider's share not off."""
    client = api.get_client(DOMAIN)
    times: list[dict[str, float]] = []
    shares = dict.fromkeys(providers, 0.0)
    CPU.clear()
    for index in range(rounds):
        order = list(providers) if index % 2 == 0 else list(reversed(providers))
        times.append({})
        CPU.append({})
        for name in order:
            api.set_provider_and_wait(providers[name], domain=DOMAIN)
            times[-1][name], on = one_pass(client, value_type, contexts)
            CPU[-1][name] = CPU_SECONDS[-1]
            shares[name] = on / len(contexts)
    return times, shares


CPU: list[dict[str, float]] = []
"""The last ``measure``'s CPU seconds per provider and round (wall times: its result)."""


def in_memory(value_type: str) -> InMemoryProvider:
    """OpenFeature's own provider holding a static flag of ``value_type``."""
    if value_type == "boolean":
        return InMemoryProvider({FLAG_KEY: InMemoryFlag("on", {"on": True, "off": False})})
    values = TYPED[value_type][1]
    return InMemoryProvider({f"{FLAG_KEY}-{value_type}": InMemoryFlag("on", dict(values))})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--types", default="all", help=f"all, or a comma list of {TYPES}")
    args = parser.parse_args()
    types = TYPES if args.types == "all" else tuple(args.types.split(","))
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    contexts = [
        EvaluationContext(f"user-{i}", {"country": COUNTRIES[i % len(COUNTRIES)]})
        for i in range(args.contexts)
    ]
    ratios = {}
    with flagsvc_client() as flags, typed_client() as typed:
        for value_type in types:
            ours = FlagsvcProvider(flags if value_type == "boolean" else typed)
            providers = {"InMemoryProvider": in_memory(value_type), "FlagsvcProvider": ours}
            measure(providers, value_type, contexts[:1000], 2)  # warm-up: first calls, caches
            times, shares = measure(providers, value_type, contexts, args.rounds)
            print(f"\n== {value_type} ==")
            ratios[value_type] = report(times, shares, len(contexts))
    api.clear_providers()
    print("\nflagsvc provider / InMemoryProvider, medians (target >= 0.9x): " +
          ", ".join(f"{t} {r:.2f}x" for t, r in ratios.items()))  # fmt: skip
    print("the same in this thread's CPU time: " +
          ", ".join(f"{t} {r:.2f}x" for t, r in zip(ratios, CPU_RATIOS, strict=True)))  # fmt: skip
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


def report(times: list[dict[str, float]], shares: dict[str, float], count: int) -> float:
    print("round  InMemory us  flagsvc us  flagsvc/InMemory (speed)")
    for index, seconds in enumerate(times, 1):
        ours, theirs = seconds["FlagsvcProvider"], seconds["InMemoryProvider"]
        us = 1e6 / count
        print(f"{index:>5} {theirs * us:>12.2f} {ours * us:>11.2f} {theirs / ours:>12.2f}x")
    print(f"\nmedians of {len(times)} rounds:")
    for name, share in shares.items():
        rate = count / statistics.median(seconds[name] for seconds in times)
        print(f"{name:<18} {rate:>10,.0f} eval/s  {1e6 / rate:6.2f} us  not off {share:.1%}")
    ratio = statistics.median(s["InMemoryProvider"] / s["FlagsvcProvider"] for s in times)
    cpu = statistics.median(s["InMemoryProvider"] / s["FlagsvcProvider"] for s in CPU)
    print(f"flagsvc provider / InMemoryProvider: {ratio:.2f}x wall clock, {cpu:.2f}x CPU time "
          "(target >= 0.9x)")  # fmt: skip
    CPU_RATIOS.append(cpu)
    return ratio


CPU_RATIOS: list[float] = []


if __name__ == "__main__":
    main()
