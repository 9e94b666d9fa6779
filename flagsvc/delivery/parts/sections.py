"""An environment's snapshot held as parts: per key wire and text, joined on demand.

``encode_snapshot`` serialises a whole snapshot with sorted keys; these keep each
flag's and cohort's serialised text so a build that changed one part re-serialises that
part only, and the joined pieces are byte for byte the full build's body.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from flagsvc_sdk.engine import SPEC_VERSION

from flagsvc.delivery.parts.cohort import CohortPart
from flagsvc.delivery.parts.text import json_text


@dataclass(slots=True)
class Section:
    """One keyed section of the snapshot (``flags`` or ``cohorts``): wire and text per key.

    The key order and the section's pieces are kept until a part changes (the order
    until a key comes or goes), so a build that changed one flag re-serialises only
    that flag.
    """

    wire: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: dict[str, list[bytes]] = field(default_factory=dict)
    """Key -> ``"<key>":<wire>`` in pieces, ready to join."""
    changes: int = 0
    _order: list[str] | None = None
    _pieces: list[bytes] | None = None

    def put(self, key: str, wire: dict[str, Any], pieces: list[bytes] | None = None) -> None:
        if key not in self.text:
            self._order = None
        self.wire[key] = wire
        self.text[key] = pieces or [f"{json_text(key)}:{json_text(wire)}".encode()]
        self._changed()

    def drop(self, key: str) -> None:
        if key in self.text:
            self._order = None
            self._changed()
        self.wire.pop(key, None)
        self.text.pop(key, None)

    def _changed(self) -> None:
        self._pieces = None
        self.changes += 1

    def pieces(self) -> list[bytes]:
        """The section's text in pieces: the small parts joined together (one piece), a
        many-chunk cohort's chunks each their own piece (never copied here)."""
        if self._pieces is None:
            if self._order is None:
                self._order = sorted(self.text)
            self._pieces = _joined(self._order, self.text)
        return self._pieces


def _joined(order: list[str], text: dict[str, list[bytes]]) -> list[bytes]:
    pieces: list[bytes] = []
    run = [b"{"]
    for index, key in enumerate(order):
        if index:
            run.append(b",")
        part = text[key]
        if len(part) == 1:
            run.extend(part)
            continue
        pieces.append(b"".join(run))
        pieces.extend(part)
        run = []
    run.append(b"}")
    pieces.append(b"".join(run))
    return pieces


@dataclass(slots=True)
class EnvironmentParts:
    """An environment's snapshot as parts, current for audit head ``head``."""

    environment: str
    environment_id: int
    head: int
    full_at: float
    members_at: float
    """When every member list was last read whole (a periodic full build may keep them)."""
    flags: Section = field(default_factory=Section)
    cohorts: Section = field(default_factory=Section)
    cohort_parts: dict[str, CohortPart] = field(default_factory=dict)
    uses: Counter[str] = field(default_factory=Counter)
    """Cohort key -> how many of the live flags name it (a cohort is sent while used)."""

    named: set[str] = field(default_factory=set)
    """Cohorts whose use changed since the last build: to fetch or to drop."""

    def put_flag(self, key: str, wire: dict[str, Any]) -> None:
        self.drop_flag(key)
        self.flags.put(key, wire)
        self.uses.update(wire["cohorts"])
        self.named.update(wire["cohorts"])

    def drop_flag(self, key: str) -> None:
        old = self.flags.wire.get(key)
        if old is not None:
            for cohort in old["cohorts"]:
                self.uses[cohort] -= 1
                if self.uses[cohort] <= 0:
                    del self.uses[cohort]  # no flag names it any more
            self.named.update(old["cohorts"])
            self.flags.drop(key)

    def put_cohort(self, key: str, part: CohortPart) -> None:
        self.cohort_parts[key] = part
        self.cohorts.put(key, part.wire, part.pieces())

    def drop_cohort(self, key: str) -> None:
        self.cohort_parts.pop(key, None)
        self.cohorts.drop(key)

    _content: tuple[tuple[int, int], list[bytes], str] | None = None

    def content(self) -> tuple[list[bytes], str]:
        """The sorted-keys JSON of everything but ``version``, as a full build's, in
        pieces (the first is ``{``), and its SHA-256; both kept until a part changes.
        The pieces are hashed one by one: only the body is ever joined."""
        changes = (self.flags.changes, self.cohorts.changes)
        if self._content is None or self._content[0] != changes:
            top = {"environment": self.environment, "spec_version": SPEC_VERSION}
            sections = {"flags": self.flags.pieces(), "cohorts": self.cohorts.pieces()}
            items = [(key, [json_text(value).encode()]) for key, value in top.items()]
            items += list(sections.items())
            pieces = [b"{"]
            for index, (key, value) in enumerate(sorted(items)):
                pieces.append(b'%s"%s":' % (b"," if index else b"", key.encode()))
                pieces.extend(value)
            pieces.append(b"}")
            digest = hashlib.sha256()
            for piece in pieces:
                digest.update(piece)
            self._content = (changes, pieces, digest.hexdigest())
        return self._content[1], self._content[2]

    def wire(self) -> dict[str, Any]:
        """The wire snapshot (what ``build_snapshot`` returns), sharing the part dicts."""
        return {
            "spec_version": SPEC_VERSION,
            "environment": self.environment,
            "version": self.head,
            "flags": dict(self.flags.wire),
            "cohorts": dict(self.cohorts.wire),
        }
