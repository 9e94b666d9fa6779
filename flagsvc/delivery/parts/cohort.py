"""One cohort's part: its wire and serialised text, the members kept in chunks.

A cohort of a million members is 20 MB of text; a member added or removed must not
re-serialise it. The members are kept sorted (code point order, as a full build reads
them) in chunks of ``CHUNK``, each with its text, so a change re-serialises only the
chunks it lands in and the body joins the rest as they were.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flagsvc.delivery.parts.text import json_text

CHUNK = 1024
"""Members per chunk of a cohort's serialised text (a chunk splits at twice this): a
member added or removed re-serialises one chunk, not the cohort."""

FEW = 64
"""Members changed at most, the cohort's flat list is copied and edited in place (each
edit moves up to the whole list: 8 MB for 1,000,000 members); more, it is rebuilt."""

MemberChange = tuple[bool, Sequence[str]]
"""User keys added (True) or removed (False)."""

_serials = itertools.count(1)


class Members(list[str]):
    """A cohort's member list (code point order) as the incremental build made it.

    ``serial`` names this list; ``base`` the serial of the list it was made from by
    adding ``added`` and removing ``removed`` (0: read whole). The patch step between
    the two versions is then known without comparing a million members
    (``delivery.patches``).
    """

    __slots__ = ("added", "base", "removed", "serial")

    def __init__(
        self,
        members: Iterable[str] = (),
        base: int = 0,
        added: Sequence[str] = (),
        removed: Sequence[str] = (),
    ) -> None:
        super().__init__(members)
        self.serial = next(_serials)
        self.base = base
        self.added = added
        self.removed = removed


def _chunk_text(chunk: list[str]) -> bytes:
    """A chunk's members as they appear inside the JSON list (no brackets)."""
    return json_text(chunk)[1:-1].encode()


@dataclass(frozen=True, slots=True)
class CohortPart:
    """One cohort's part: its wire and its serialised text, the members in chunks.

    Immutable: a change makes a new part (sharing the chunks it did not touch), since
    the wire of the version before is still served and diffed.
    """

    wire: dict[str, Any]
    prefix: bytes
    """``"<key>":{...,"members":[``: everything before the members."""
    suffix: bytes
    """``],...}``: everything after them."""
    chunks: tuple[list[str], ...]
    texts: tuple[bytes, ...]

    @classmethod
    def of(cls, wire: dict[str, Any], members: Sequence[str] | None = None) -> CohortPart:
        """The part of ``wire`` (its members: ``members`` if given, else the wire's)."""
        listed = wire["members"] if members is None else members
        chunks = tuple(list(listed[i : i + CHUNK]) for i in range(0, len(listed), CHUNK))
        texts = tuple(_chunk_text(chunk) for chunk in chunks)
        if not isinstance(listed, Members):
            listed = Members(listed)
        return cls._made({**wire, "members": listed}, chunks, texts)

    @classmethod
    def _made(
        cls, wire: dict[str, Any], chunks: tuple[list[str], ...], texts: tuple[bytes, ...]
    ) -> CohortPart:
        empty = json_text({**wire, "members": []})
        # the first '"members":[]' is the key's (the strings before it are escaped)
        cut = empty.index('"members":[]') + len('"members":[')
        key = json_text(wire["key"])
        prefix, suffix = f"{key}:{empty[:cut]}".encode(), empty[cut:].encode()
        return cls(wire, prefix, suffix, chunks, texts)

    def with_row(self, row: dict[str, Any]) -> CohortPart:
        """The same members under a re-read row (rules, opt-in)."""
        return self._made({**row, "members": self.wire["members"]}, self.chunks, self.texts)

    def pieces(self) -> list[bytes]:
        """The part's serialised text, in pieces to join."""
        if len(self.texts) <= 1:
            return [self.prefix + b"".join(self.texts) + self.suffix]
        pieces = [self.prefix]
        for index, text in enumerate(self.texts):
            if index:
                pieces.append(b",")
            pieces.append(text)
        pieces.append(self.suffix)
        return pieces

    def changed(self, changes: Sequence[MemberChange]) -> CohortPart | None:
        """The part after ``changes`` (in order), or None if they changed nothing (an add
        of a member, a removal of a stranger: each sets the key's membership, so
        replaying one is harmless)."""
        chunks = list(self.chunks)
        firsts = [chunk[0] for chunk in chunks]
        was: dict[str, bool] = {}
        for adding, keys in changes:
            for key in keys:
                was.setdefault(key, _holds(chunks, firsts, key))
                _set(chunks, firsts, key, adding)
        now = {key for key in was if _holds(chunks, firsts, key)}
        added = sorted(key for key in now if not was[key])
        removed = sorted(key for key in was if was[key] and key not in now)
        if not added and not removed:
            return None
        kept = {id(chunk): text for chunk, text in zip(self.chunks, self.texts, strict=True)}
        texts = tuple(kept.get(id(chunk)) or _chunk_text(chunk) for chunk in chunks)
        listed = _listed(self.wire["members"], chunks, added, removed)
        return self._made({**self.wire, "members": listed}, tuple(chunks), texts)


def _listed(
    members: list[str], chunks: list[list[str]], added: list[str], removed: list[str]
) -> Members:
    """The flat member list after the change, made from ``members`` and accounted for."""
    base = members.serial if isinstance(members, Members) else 0
    if len(added) + len(removed) > FEW:
        return Members(itertools.chain.from_iterable(chunks), base, added, removed)
    listed = Members(members, base, added, removed)  # a copy and a few moves, not a rebuild
    for key in removed:
        del listed[bisect.bisect_left(listed, key)]
    for key in added:
        bisect.insort(listed, key)
    return listed


def _set(chunks: list[list[str]], firsts: list[str], key: str, adding: bool) -> None:
    """Add ``key`` to (or remove it from) the chunk where code point order puts it: a new
    chunk list (the old one is still the previous version's), split when too long,
    dropped when empty."""
    index = max(bisect.bisect_right(firsts, key) - 1, 0)
    chunk = chunks[index] if chunks else []
    at = bisect.bisect_left(chunk, key)
    if (at < len(chunk) and chunk[at] == key) == adding:
        return
    fresh = [*chunk[:at], key, *chunk[at:]] if adding else [*chunk[:at], *chunk[at + 1 :]]
    if not chunks:
        chunks.append(fresh)
        firsts.append(key)
    elif not fresh:
        del chunks[index], firsts[index]
    elif len(fresh) > 2 * CHUNK:
        half = len(fresh) // 2
        chunks[index : index + 1] = [fresh[:half], fresh[half:]]
        firsts[index : index + 1] = [fresh[0], fresh[half]]
    else:
        chunks[index], firsts[index] = fresh, fresh[0]


def _holds(chunks: list[list[str]], firsts: list[str], key: str) -> bool:
    if not chunks:
        return False
    chunk = chunks[max(bisect.bisect_right(firsts, key) - 1, 0)]
    at = bisect.bisect_left(chunk, key)
    return at < len(chunk) and chunk[at] == key
