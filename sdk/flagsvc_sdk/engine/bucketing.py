"""Deterministic, sticky bucketing of users for percentage rollouts.

Algorithm (version 1, pinned by ``spec/bucketing.json`` so other languages can match it):
MurmurHash3 x86 32-bit, seed 0, of the UTF-8 bytes of ``"{flag_key}:{salt}:{user_key}"``,
read as unsigned, modulo :data:`BUCKETS`. A user is in a rollout of ``p`` percent iff their
bucket is below ``threshold(p)``, so raising ``p`` only adds users and lowering it removes
the last added first. The flag key and salt are in the input, so buckets are independent
across flags. Python's built-in ``hash()`` is salted per process and must never be used.
"""

from __future__ import annotations

import mmh3

__all__ = ["BUCKETS", "bucket", "bucket_of", "threshold"]

BUCKETS = 10_000
"""Number of buckets: a rollout percent with two decimals maps to a whole bucket count."""

_hash = mmh3.hash


def bucket(flag_key: str, salt: str, user_key: str) -> int:
    """Return the user's bucket in ``[0, BUCKETS)`` for this flag."""
    return bucket_of(f"{flag_key}:{salt}:", user_key)


def bucket_of(hash_prefix: str, user_key: str) -> int:
    """Return the bucket given a precomputed ``"{flag_key}:{salt}:"`` prefix (hot path)."""
    return _hash(hash_prefix + user_key, 0, False) % BUCKETS


def threshold(percent: float) -> int:
    """Return how many buckets a rollout of ``percent`` (0..100, two decimals) covers.

    Rounding absorbs binary float error (``0.29 * 100`` is ``28.999999999999996``).
    """
    return round(percent * 100)
