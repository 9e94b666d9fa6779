"""Signatures receivers check: HMAC-SHA256 over ``<timestamp>.<body>``, as Stripe does.

The header is ``Flagsvc-Signature: t=<unix seconds>,v1=<hex digest>``. The timestamp is
signed with the body, so a receiver that refuses timestamps older than a few minutes
cannot be fed a captured delivery again later. Each attempt is signed afresh (its own
timestamp); the body and the event id stay the same across attempts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "Flagsvc-Signature"
EVENT_ID_HEADER = "Flagsvc-Event-Id"
EVENT_TYPE_HEADER = "Flagsvc-Event"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    """A fresh signing secret (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def header(secret: str, timestamp: int, body: bytes) -> str:
    """The value of the ``Flagsvc-Signature`` header for one attempt."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(
    secret: str,
    header_value: str,
    body: bytes,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: parse the header, refuse stale timestamps, compare in
    constant time (several ``v1`` entries are accepted, for a secret being rotated)."""
    parts = [part.partition("=") for part in header_value.split(",")]
    stamps = [value for key, _, value in parts if key.strip() == "t"]
    digests = [value for key, _, value in parts if key.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not digests:
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, digest.strip()) for digest in digests)
