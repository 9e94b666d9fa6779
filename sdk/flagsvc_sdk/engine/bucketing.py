"""Deterministic, sticky bucketing of users for percentage rollouts.

Algorithm (version 1, pinned by ``spec/bucketing.json`` so other languages can match it):
MurmurHash3 x86 32-bit, seed 0, of the UTF-8 bytes of ``"{flag_key}:{salt}:{user_key}"``,
read as unsigned, modulo :data:`BUCKETS`. A user is in a rollout of ``p`` percent iff their
bucket is below ``threshold(p)``, so raising ``p`` only adds users and lowering it removes
the last added first. The flag key and salt are in the input, so buckets are independent
across flags. Python's built-in ``hash()`` is salted per process and must never be used.

Only valid Unicode has UTF-8 bytes: a Python string can hold a lone surrogate
(``json.loads('"\\udcff"')``), and mmh3 5.x crashes the process on one instead of
raising. So nothing reaches the hash unchecked: flag keys and salts are checked when a
snapshot loads, user keys by the context check (:mod:`.context`), and :func:`bucket`
checks its own arguments.
"""

from __future__ import annotations

import mmh3

__all__ = ["BUCKETS", "bucket", "bucket_of", "is_unicode", "threshold"]

BUCKETS = 10_000
"""Number of buckets: a rollout percent with two decimals maps to a whole bucket count."""

_hash = mmh3.hash


def is_unicode(text: str) -> bool:
    """Whether ``text`` is valid Unicode (has UTF-8 bytes: no lone surrogates)."""
    if text.isascii():  # O(1) in CPython: the common case costs no scan
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def bucket(flag_key: str, salt: str, user_key: str) -> int:
    """Return the user's bucket in ``[0, BUCKETS)`` for this flag.

    :raise ValueError: if the joined text is not valid Unicode (it has no UTF-8 bytes).
    """
    joined = f"{flag_key}:{salt}:{user_key}"
    if not is_unicode(joined):
        raise ValueError("bucketing needs valid Unicode text (no lone surrogates)")
    return _hash(joined, 0, False) % BUCKETS


def bucket_of(hash_prefix: str, user_key: str) -> int:
    """Return the bucket given a precomputed ``"{flag_key}:{salt}:"`` prefix (hot path).

    Both must be valid Unicode, checked by the caller (see the module docstring).
    """
    return _hash(hash_prefix + user_key, 0, False) % BUCKETS


def threshold(percent: float) -> int:
    """Return how many buckets a rollout of ``percent`` (0..100, two decimals) covers.

    Rounding absorbs binary float error (``0.29 * 100`` is ``28.999999999999996``).
    """
    return round(percent * 100)
