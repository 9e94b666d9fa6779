"""Boolean evaluations/s through OpenFeature: the flagsvc provider vs ``InMemoryProvider``.

    .venv/bin/python bench/openfeature.py [--contexts 50000] [--rounds 9]

Both providers sit behind the same OpenFeature API client (same domain, same hooks,
same contexts); only the provider is swapped between passes. Each round times one pass
of each, the order flipped every round (ABBA), so machine noise hits both alike; each
round's ratio is printed, and the figures are medians over the rounds.
``InMemoryProvider`` answers a static flag from a dict: it is the cost of OpenFeature
itself. The flagsvc provider evaluates the real flag (``country in [NL, DE]`` cohort +
50 % rollout) locally. Target: >= 0.9x.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

# This file is named like the package it measures; run as a script, its folder comes
# first on sys.path and "import openfeature" would import this file. Drop the folder.
HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]

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


def one_pass(client: OpenFeatureClient, contexts: list[EvaluationContext]) -> tuple[float, int]:
    """Seconds for one pass over ``contexts``, and how many answers were "on"."""
    get = client.get_boolean_value
    started = time.perf_counter()
    on = 0
    for context in contexts:
        on += get(FLAG_KEY, False, context)
    return time.perf_counter() - started, on


def measure(
    providers: dict[str, FeatureProvider], contexts: list[EvaluationContext], rounds: int
) -> tuple[list[dict[str, float]], dict[str, float]]:
    """Seconds per provider for each round, and each provider's on-share."""
    client = api.get_client(DOMAIN)
    times: list[dict[str, float]] = []
    shares = dict.fromkeys(providers, 0.0)
    for index in range(rounds):
        order = list(providers) if index % 2 == 0 else list(reversed(providers))
        times.append({})
        for name in order:
            api.set_provider_and_wait(providers[name], domain=DOMAIN)
            times[-1][name], on = one_pass(client, contexts)
            shares[name] = on / len(contexts)
    return times, shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    contexts = [
        EvaluationContext(f"user-{i}", {"country": COUNTRIES[i % len(COUNTRIES)]})
        for i in range(args.contexts)
    ]
    in_memory = InMemoryProvider({FLAG_KEY: InMemoryFlag("on", {"on": True, "off": False})})
    with flagsvc_client() as flags:
        providers = {"InMemoryProvider": in_memory, "FlagsvcProvider": FlagsvcProvider(flags)}
        measure(providers, contexts[:1000], 2)  # warm-up: first calls, caches
        times, shares = measure(providers, contexts, args.rounds)
    api.clear_providers()
    report(times, shares, len(contexts))


def report(times: list[dict[str, float]], shares: dict[str, float], count: int) -> None:
    print("round  InMemory us  flagsvc us  flagsvc/InMemory (speed)")
    for index, seconds in enumerate(times, 1):
        ours, theirs = seconds["FlagsvcProvider"], seconds["InMemoryProvider"]
        us = 1e6 / count
        print(f"{index:>5} {theirs * us:>12.2f} {ours * us:>11.2f} {theirs / ours:>12.2f}x")
    print(f"\nmedians of {len(times)} rounds:")
    for name, share in shares.items():
        rate = count / statistics.median(seconds[name] for seconds in times)
        print(f"{name:<18} {rate:>10,.0f} eval/s  {1e6 / rate:6.2f} us  on {share:.1%}")
    ratio = statistics.median(s["InMemoryProvider"] / s["FlagsvcProvider"] for s in times)
    print(f"\nflagsvc provider / InMemoryProvider: {ratio:.2f}x (target >= 0.9x)")


if __name__ == "__main__":
    main()
