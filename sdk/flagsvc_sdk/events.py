"""What a client tells its listeners: a new snapshot changed answers (:class:`Change`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Change", "ChangeListener"]


@dataclass(frozen=True, slots=True)
class Change:
    """A new snapshot was installed: which flags now answer differently, and its version.

    ``source`` is where the snapshot came from: ``service``, ``cache``, ``bootstrap``
    (or ``testing`` for the testing double).
    """

    version: int
    previous_version: int | None
    flags_changed: tuple[str, ...]
    source: str


ChangeListener = Callable[[Change], None]
"""Called after each swap that changes a flag; keep it quick, exceptions are logged."""
