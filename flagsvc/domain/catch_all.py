"""Catch-all cohorts: rules that admit users nobody picked.

An early-access cohort names its audience: explicit members, users who opted in, or
users whose attributes match rules. A rule set that matches (nearly) everyone is a
general rollout by another name, and in a gated environment whose readiness is
incomplete it would walk around the gate. A cohort's rules are a **catch-all** when

1. they match a context that carries nothing but a random user key: several keys of
   several shapes (UUIDs, numbers, e-mail addresses, words, non-Latin text, one and
   256 characters), tried with the engine itself; or
2. every one of its rules holds for nearly any value of its attribute: a negation
   (``neq``, ``not_in``: all but the listed values), or a rule that matches at least
   ``BROAD_SHARE`` of arbitrary values of the type it compares (``contains ""``,
   ``matches "."``, ``in [true, false]``, ``gt -1e300``, ``semver_gte 0.0.0``,
   ``after 0001-01-02``, ...), also tried with the engine.

The probes are random but seeded by the rules themselves, so the same rules always get
the same verdict, in every process. Negations are judged by their shape, not by probes,
so listing the probes in a ``not_in`` gains nothing. What the probes cannot know is the
real distribution of an attribute (``age gte 0`` is everyone in practice, but not for
arbitrary numbers): the early-access reach the SDKs report (``services.reach``) shows
those on the flag page.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import string
import uuid
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from flagsvc_sdk.engine import Rule
from flagsvc_sdk.engine import compile_rule
from flagsvc_sdk.engine import compile_rules
from flagsvc_sdk.engine import parse_rule

__all__ = ["BROAD_SHARE", "catch_all_reason"]

BROAD_SHARE = 0.9
"""A rule matching at least this share of arbitrary values of its type holds for nearly any."""
_PROBES = 64  # arbitrary values per rule
_NEGATIONS = frozenset({"neq", "not_in"})
_STRING_OPS = frozenset({"contains", "starts_with", "ends_with", "matches"})
_NUMBER_OPS = frozenset({"gt", "gte", "lt", "lte"})
_SEMVER_OPS = frozenset({"semver_gte", "semver_lt"})
_INSTANT_OPS = frozenset({"before", "after"})
_SCRIPTS = ("абвгдежзиклмнопрст", "日本語中文한국어", "αβγδεζηθ", "ابتثجحخ", "àéîõüçñß")
_ALPHABETS: tuple[str, ...] = (
    string.ascii_lowercase,
    string.ascii_letters + string.digits,
    string.printable[:94],
    *_SCRIPTS,
)
_YEAR_1, _YEAR_10000 = -62_135_596_800, 253_402_300_800  # epoch seconds
_WORDS = ("alice", "bob", "user", "customer", "acct", "member", "guest", "dev", "team")


def catch_all_reason(rules: Sequence[Mapping[str, Any]]) -> str | None:
    """Why these cohort rules admit users nobody picked, or None when they are bounded.

    ``rules`` must be valid (the API's schema checks them with the engine first); no
    rules match nobody, so they are bounded.
    """
    if not rules:
        return None
    return _verdict(json.dumps(list(rules), sort_keys=True, ensure_ascii=False))


@functools.lru_cache(maxsize=4096)
def _verdict(canonical: str) -> str | None:
    """The verdict for one canonical rule set (cached: flag pages list many cohorts)."""
    parsed = [parse_rule(rule) for rule in json.loads(canonical)]
    rng = random.Random(hashlib.sha256(canonical.encode()).digest())
    matches = compile_rules(parsed)
    assert matches is not None  # some rules: a predicate
    for key in _random_keys(rng):
        if matches({"key": key}):
            return f"its rules match a user who sends nothing but a random key, such as {key!r}"
    broad = [_broad(rule, rng) for rule in parsed]
    if all(broad):
        return "every rule holds for nearly any value: " + "; ".join(filter(None, broad))
    return None


def _broad(rule: Rule, rng: random.Random) -> str | None:
    """Why ``rule`` holds for nearly any value of its attribute, or None."""
    shown = f"{rule.attribute} {rule.op} {_values(rule)}"
    if rule.op in _NEGATIONS:
        return f"{shown} excludes only the values it lists"
    probes = _random_keys(rng) if rule.attribute == "key" else _probes_for(rule, rng)
    test = compile_rule(rule)
    share = sum(1 for value in probes if test({"key": "k", rule.attribute: value})) / len(probes)
    if share >= BROAD_SHARE:
        return f"{shown} matches {share:.0%} of arbitrary values"
    return None


def _values(rule: Rule) -> str:
    shown = json.dumps(list(rule.values[:3]), ensure_ascii=False)
    return shown if len(rule.values) <= 3 else shown[:-1] + ", …]"


def _probes_for(rule: Rule, rng: random.Random) -> list[object]:
    """Arbitrary values of the type ``rule`` compares."""
    return [_probe_maker(rule)(rng) for _ in range(_PROBES)]


def _probe_maker(rule: Rule) -> Callable[[random.Random], object]:
    if rule.op in _STRING_OPS:
        return _random_string
    if rule.op in _NUMBER_OPS:
        return _random_number
    if rule.op in _SEMVER_OPS:
        return _random_version
    if rule.op in _INSTANT_OPS:
        return _random_instant
    if all(isinstance(value, bool) for value in rule.values):
        return lambda rng: rng.random() < 0.5
    if all(isinstance(value, int | float) and not isinstance(value, bool) for value in rule.values):
        return _random_number
    return _random_string


def _random_keys(rng: random.Random) -> list[str]:
    """User keys of the shapes products use, different for every rule set."""
    keys = [
        str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        uuid.UUID(int=rng.getrandbits(128)).hex,
        str(rng.randrange(1, 10 ** rng.randint(1, 18))),
        f"{_word(rng)}{rng.randrange(10**6)}@{_word(rng)}-{rng.randrange(999)}.example",
        f"{rng.choice(_WORDS)}-{rng.randrange(10**9)}",
        f"{rng.choice(_WORDS)}_{_word(rng)}",
        "".join(rng.choices(rng.choice(_SCRIPTS), k=rng.randint(2, 12))),
        rng.choice(string.ascii_letters + string.digits),
        "".join(rng.choices(string.printable[:94], k=256)),
        "".join(rng.choices(string.ascii_uppercase + string.digits, k=rng.randint(6, 24))),
    ]
    return keys + [_random_string(rng) or "x" for _ in range(22)]


def _word(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 10)))


def _random_string(rng: random.Random) -> str:
    alphabet = rng.choice(_ALPHABETS)
    return "".join(rng.choices(alphabet, k=rng.choice((0, 1, 2, 5, 8, 16, 40))))


def _random_number(rng: random.Random) -> float | int:
    magnitude = 10 ** rng.uniform(-3, 300)
    value = -magnitude if rng.random() < 0.5 else magnitude
    return int(value) if magnitude < 1e15 and rng.random() < 0.5 else value


def _random_version(rng: random.Random) -> str:
    core = ".".join(str(rng.choice((0, 1, 2, rng.randrange(1000)))) for _ in range(3))
    return core + (f"-rc.{rng.randrange(9)}" if rng.random() < 0.2 else "")


def _random_instant(rng: random.Random) -> str | float:
    if rng.random() < 0.3:
        return rng.uniform(_YEAR_1, _YEAR_10000)  # epoch seconds
    year = rng.randint(1, 9999)
    return (
        f"{year:04}-{rng.randint(1, 12):02}-{rng.randint(1, 28):02}T{rng.randint(0, 23):02}:00:00Z"
    )
