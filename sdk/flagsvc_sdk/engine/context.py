"""What a valid evaluation context is, and the one canonical form of its user key.

A context is a mapping with a ``"key"``: the user key. Evaluation reads the key as a
string everywhere (membership, exclusions, rules on the attribute ``key``, bucketing),
so every evaluator must agree on which keys are valid and on their string form:

- a non-empty string that is valid Unicode is its own form;
- an integer (``user.id``; never a bool) is its decimal string: ``42`` and ``"42"`` are
  the same user, in the same bucket;
- no key at all (absent, or ``None``) is a *keyless* context (:func:`is_keyless`): it
  evaluates wherever the answer does not depend on a key (``evaluator.py``);
- anything else (an empty key, a float, a boolean, a string holding a lone
  surrogate such as ``json.loads('"\\udcff"')``, which no UTF-8 text can carry and the
  service refuses with a 422) makes the context invalid: the caller's default with
  ``INVALID_CONTEXT``.

Only the first case is on the hot path, and it is decided by three cheap tests that the
SDK's fast paths repeat inline (:func:`is_plain_key`); the rest is :func:`canonical_context`.
"""

from __future__ import annotations

from collections.abc import Mapping

from .bucketing import is_unicode
from .model import Context

__all__ = ["canonical_context", "is_keyless", "is_plain_key", "user_key_of"]


def is_plain_key(key: object) -> bool:
    """A key that is its own canonical form and needs no further look: a non-empty
    ASCII ``str`` (``isascii`` is O(1) in CPython). The fast paths inline this test."""
    return type(key) is str and key != "" and key.isascii()


def is_keyless(context: object) -> bool:
    """A mapping without a user key (no ``"key"``, or ``None``): an anonymous context."""
    if type(context) is not dict and not isinstance(context, Mapping):
        return False
    return context.get("key") is None


def user_key_of(context: object) -> str | None:
    """The context's user key in its canonical form; ``None`` if the context is invalid.

    A mapping whose ``get`` raises is left to raise (the engine answers ``GENERAL``).
    """
    if type(context) is not dict and not isinstance(context, Mapping):
        return None
    key = context.get("key")
    if isinstance(key, str):
        return str(key) if key and is_unicode(key) else None
    if isinstance(key, int) and not isinstance(key, bool):
        try:
            return str(int(key))
        except ValueError:  # beyond Python's digit limit for int -> str: no real user id
            return None
    return None


def canonical_context(context: object) -> Context | None:
    """``context`` with its user key in canonical form, or ``None`` if it is invalid.

    The same object when the key already is (no copy); a new dict otherwise, so rules
    on the attribute ``key`` read the string form too.
    """
    user_key = user_key_of(context)
    if user_key is None:
        return None
    assert isinstance(context, Mapping)  # user_key_of checked it
    if context.get("key") is user_key:
        return context
    return {**context, "key": user_key}
