"""Who is changing what, when: passed into every service call that writes."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from flagsvc.domain.roles import Role

Precondition = Callable[[Mapping[str, object]], None]
"""Called with a row's version data after it is locked; raises to refuse (If-Match)."""


def no_precondition(_etag_data: Mapping[str, object]) -> None:
    """Accept any version: used where the caller sent no If-Match."""


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller behind a change: a named admin token with a role, or an SDK key."""

    name: str
    role: Role | None
    token_id: int | None = None
    environment: str | None = None  # set for SDK keys: the one environment they serve
    sdk_key_id: int | None = None  # set for SDK keys: revoking the key ends its use everywhere

    @property
    def role_name(self) -> str:
        """Role as recorded in the audit (``sdk`` for SDK keys, ``system`` for the CLI)."""
        if self.role is not None:
            return self.role.value
        return "sdk" if self.environment else "system"


@dataclass(frozen=True, slots=True)
class Change:
    """The who / when / which-request of one write, recorded in its audit event."""

    actor: Actor
    at: datetime
    request_id: str


SYSTEM = Actor(name="system", role=None)


def etag_data(kind: str, row_id: int, version: int) -> dict[str, object]:
    """What an entity's ETag is computed from: its identity and version."""
    return {"kind": kind, "id": row_id, "version": version}
