"""Boolean evaluations/s through OpenFeature: the flagsvc provider vs ``InMemoryProvider``.

    .venv/bin/python bench/openfeature.py [--contexts 50000] [--repeat 5]

Both providers sit behind the same OpenFeature API client (same domain, same hooks,
same contexts); only the provider is swapped between passes, which alternate so
machine noise hits both alike. ``InMemoryProvider`` answers a static flag from a dict:
it is the cost of OpenFeature itself. The flagsvc provider evaluates the real flag
(``country in [NL, DE]`` cohort + 50 % rollout) locally. Target: >= 0.9x.
"""

from __future__ import annotations

import argparse
import importlib.util
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
    providers: dict[str, FeatureProvider], contexts: list[EvaluationContext], repeat: int
) -> dict[str, tuple[float, float]]:
    """Best evaluations/s and on-share per provider, passes interleaved."""
    client = api.get_client(DOMAIN)
    best = dict.fromkeys(providers, float("inf"))
    shares = dict.fromkeys(providers, 0.0)
    for _ in range(repeat):
        for name, provider in providers.items():
            api.set_provider_and_wait(provider, domain=DOMAIN)
            seconds, on = one_pass(client, contexts)
            best[name] = min(best[name], seconds)
            shares[name] = on / len(contexts)
    return {name: (len(contexts) / best[name], shares[name]) for name in providers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    contexts = [
        EvaluationContext(f"user-{i}", {"country": COUNTRIES[i % len(COUNTRIES)]})
        for i in range(args.contexts)
    ]
    in_memory = InMemoryProvider({FLAG_KEY: InMemoryFlag("on", {"on": True, "off": False})})
    with flagsvc_client() as flags:
        providers = {"InMemoryProvider": in_memory, "FlagsvcProvider": FlagsvcProvider(flags)}
        results = measure(providers, contexts, args.repeat)
    api.clear_providers()
    for name, (rate, share) in results.items():
        print(f"{name:<18} {rate:>10,.0f} eval/s  {1e6 / rate:6.2f} us  on {share:.1%}")
    ratio = results["FlagsvcProvider"][0] / results["InMemoryProvider"][0]
    print(f"\nflagsvc provider / InMemoryProvider: {ratio:.2f}x (target >= 0.9x)")


if __name__ == "__main__":
    main()
