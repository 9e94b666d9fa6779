"""Build an environment's snapshot: everything the engine needs to evaluate locally.

Every change writes an audit event in its own transaction, so the audit head (the
``seq`` of the newest event) is a change counter: an unchanged head means nothing
changed. A moved head may still leave *this* environment untouched (a change in
another environment), so the wire ``version`` is the head at which the environment's
*content* last changed: ``encode_snapshot`` hashes the content (everything but the
version) and keeps the previous version when the hash is the same. ETags and stream
``change`` events follow that version, so a change in staging neither re-downloads
nor even announces production's snapshot.

The build reads in READ COMMITTED, statement by statement: a change committing
mid-build can leave a snapshot labelled with the older head yet holding part of the
newer change. Its own commit moves the head, so the next build (milliseconds later,
when the stream hears of it) corrects it.

``delivery.store.RedisSnapshotStore`` shares encoded snapshots between instances
(``flagsvc:snapshot:<env>``), so N instances build each version once.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Collection
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from typing import Any

from flagsvc_sdk.engine import SPEC_VERSION
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import literal_column
from sqlalchemy import null
from sqlalchemy import select
from sqlalchemy import union_all
from sqlalchemy.orm import Session

from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.stages import Stage
from flagsvc.domain.stages import to_percent
from flagsvc.storage.models import AuditEvent
from flagsvc.storage.models import Cohort
from flagsvc.storage.models import CohortMember
from flagsvc.storage.models import Environment
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagExclusion
from flagsvc.storage.models import FlagState
from flagsvc.storage.models import FlagStateCohort

_HEAD = select(func.coalesce(func.max(AuditEvent.seq), 0))


def audit_head(session: Session) -> int:
    """The newest audit ``seq`` (0 for an empty log): the change counter.

    Runs on every SDK request, so it skips the ORM's statement handling: a prebuilt
    Core statement on the session's connection (an indexed ``max``, one round trip).
    """
    return session.connection().execute(_HEAD).scalar() or 0


def build_snapshot(session: Session, environment_key: str) -> dict[str, Any]:
    """The wire snapshot of one environment (retired flags are left out): the full build.

    Five Core statements and no ORM objects: loading 200 ``FlagState`` rows through the ORM
    (each joining its flag and environment, each flag pulling its readiness items) was
    most of a build. Cohorts, their members and exclusions are selected through the
    environment's states (a join), not through a list of ids sent back. The cache
    builds incrementally instead (``delivery.parts``); this is what that must equal.
    """
    environment_id = environment_row(session, environment_key)
    version = audit_head(session)
    return {
        "spec_version": SPEC_VERSION,
        "environment": environment_key,
        "version": version,
        "flags": read_flags(session, environment_id),
        "cohorts": read_cohorts(session, used_cohorts(live_states(environment_id))),
    }


def environment_row(session: Session, environment_key: str) -> int:
    """The environment's id.

    :raise NotFoundError: no such environment.
    """
    environment_id = session.execute(
        select(Environment.id).where(Environment.key == environment_key)
    ).scalar()
    if environment_id is None:
        raise NotFoundError("environment", environment_key)
    return int(environment_id)


def live_states(environment_id: Any) -> Any:
    """The condition selecting an environment's states that are sent (not retired)
    (``environment_id``: an id, or a bound parameter for a prebuilt statement)."""
    return (FlagState.environment_id == environment_id) & (FlagState.stage != Stage.RETIRED.value)


def read_flags(
    session: Session, environment_id: int, keys: Collection[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The wire of the environment's live flags (only those named by ``keys``, if given).

    One prebuilt statement whatever the count (``_FLAG_PARTS``): the states with their
    flags, cohort lists and exclusions, so a one-flag build waits on one round trip.
    """
    params: dict[str, Any] = {"environment_id": environment_id}
    if keys is not None:
        params["keys"] = list(keys)
    rows = session.connection().execute(_FLAG_PARTS[keys is not None], params)
    states: list[Any] = []
    cohorts: dict[int, list[str]] = defaultdict(list)
    own: dict[int, dict[str, str]] = defaultdict(dict)
    excluded: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        if row.kind == _STATE:
            states.append(row)
        elif row.kind == _COHORT:
            cohorts[row.state_id].append(row.value)
            if row.extra is not None:
                own[row.state_id][row.value] = row.extra
        else:
            excluded[row.state_id].append(row.value)
    return {
        row.value: _flag_wire(row, cohorts[row.state_id], own[row.state_id], excluded[row.state_id])
        for row in states
    }


def cohort_ids(keys: Collection[str]) -> Any:
    """The ids of the cohorts named by ``keys`` (a subquery for ``read_cohorts``)."""
    return select(Cohort.id).where(Cohort.key.in_(list(keys))).scalar_subquery()


def _flag_wire(
    row: Any, cohorts: list[str], own: dict[str, str], exclusions: list[str]
) -> dict[str, Any]:
    wire = {
        "key": row.value,
        "salt": row.extra,
        "stage": row.stage,
        "rollout_percent": float(to_percent(row.rollout_basis_points)),
        "killed": row.killed,
        "cohorts": cohorts,
        "exclusions": exclusions,
        "type": row.value_type,
        "variations": {variation["key"]: variation["value"] for variation in row.variations},
        "on": row.on_variation,
        "off": row.off_variation,
        "key_result": row.key_result_id,
        "flow_item": row.flow_item,
    }
    if own:
        wire["cohort_variations"] = own
    return wire


_STATE, _COHORT, _EXCLUSION = 0, 1, 2


def _flag_parts(by_key: bool) -> Any:
    """States (kind 0: the flag's key in ``value``, its salt in ``extra``), their cohorts
    in order (kind 1: the cohort's key, the variation it serves or NULL) and exclusions
    (kind 2: the user key), one ``UNION ALL``, of environment ``:environment_id`` (and
    flags ``:keys``, when ``by_key``)."""
    live = live_states(bindparam("environment_id"))
    if by_key:
        named = select(Flag.id).where(Flag.key.in_(bindparam("keys", expanding=True)))
        live = live & FlagState.flag_id.in_(named)
    nothing = [null()] * 9
    states = (
        select(
            literal_column(str(_STATE), Integer).label("kind"),
            FlagState.id.label("state_id"),
            literal_column("0", Integer).label("position"),
            Flag.key.label("value"),
            Flag.salt.label("extra"),
            FlagState.stage.label("stage"),
            FlagState.rollout_basis_points.label("rollout_basis_points"),
            FlagState.killed.label("killed"),
            Flag.value_type.label("value_type"),
            Flag.variations.label("variations"),
            Flag.on_variation.label("on_variation"),
            Flag.off_variation.label("off_variation"),
            Flag.key_result_id.label("key_result_id"),
            Flag.flow_item.label("flow_item"),
        )
        .join(Flag, Flag.id == FlagState.flag_id)
        .where(live)
    )
    cohorts = (
        select(
            literal_column(str(_COHORT), Integer),
            FlagStateCohort.flag_state_id,
            FlagStateCohort.position,
            Cohort.key,
            FlagStateCohort.variation,
            *nothing,
        )
        .join(Cohort, Cohort.id == FlagStateCohort.cohort_id)
        .join(FlagState, FlagState.id == FlagStateCohort.flag_state_id)
        .where(live)
    )
    exclusions = (
        select(
            literal_column(str(_EXCLUSION), Integer),
            FlagExclusion.flag_state_id,
            literal_column("0", Integer),
            FlagExclusion.user_key,
            literal_column("NULL", String),
            *nothing,
        )
        .join(FlagState, FlagState.id == FlagExclusion.flag_state_id)
        .where(live)
    )
    every = union_all(states, cohorts, exclusions).subquery()
    return select(every).order_by(every.c.kind, every.c.state_id, every.c.position, every.c.value)


_FLAG_PARTS = {False: _flag_parts(by_key=False), True: _flag_parts(by_key=True)}


def used_cohorts(live: Any) -> Any:
    """The ids of the cohorts the ``live`` states use (a subquery)."""
    return (
        select(FlagStateCohort.cohort_id)
        .join(FlagState, FlagState.id == FlagStateCohort.flag_state_id)
        .where(live)
        .distinct()
        .scalar_subquery()
    )


def read_cohorts(session: Session, which: Any) -> dict[str, dict[str, Any]]:
    """The wire of the cohorts whose ids ``which`` selects, with their members.

    Members are in code point order (Python's string order, PostgreSQL's ``C``
    collation, SQLite's default), whatever the database's collation: the incremental
    build inserts a member where that order puts it, and must write the same bytes.
    """
    cohorts = session.execute(
        select(Cohort.id, Cohort.key, Cohort.rules, Cohort.opt_in).where(Cohort.id.in_(which))
    ).all()
    if not cohorts:
        return {}
    members: dict[int, list[str]] = defaultdict(list)
    member_rows = session.execute(
        select(CohortMember.cohort_id, CohortMember.user_key)
        .where(CohortMember.cohort_id.in_(which))
        .order_by(CohortMember.cohort_id, CohortMember.user_key)
    )
    for cohort_id, user_key in member_rows:
        members[cohort_id].append(user_key)
    for listed in members.values():
        listed.sort()  # code point order whatever the collation: one pass if already so
    return {
        c.key: {"key": c.key, "members": members[c.id], "rules": c.rules, "opt_in": c.opt_in}
        for c in cohorts
    }


def read_cohort_rows(session: Session, keys: Collection[str]) -> dict[str, dict[str, Any]]:
    """The cohorts named by ``keys``, their wire without ``members`` (a rules or opt-in
    edit: the members kept are still right)."""
    rows = session.execute(
        select(Cohort.key, Cohort.rules, Cohort.opt_in).where(Cohort.key.in_(list(keys)))
    )
    return {key: {"key": key, "rules": rules, "opt_in": opt_in} for key, rules, opt_in in rows}


@dataclass(frozen=True, slots=True)
class EncodedSnapshot:
    """A snapshot serialised once, as served: ``body`` is the wire JSON.

    ``version`` is the content version (what the body says); ``head`` is the newest
    audit head this content is known to be current for.
    """

    environment: str
    version: int
    head: int
    content_hash: str
    body: bytes

    @property
    def etag(self) -> str:
        """The ETag value for ``GET /sdk/v1/snapshot``."""
        return f"{self.environment}.{self.version}"


def encode_snapshot(wire: dict[str, Any], previous: EncodedSnapshot | None) -> EncodedSnapshot:
    """Serialise ``wire`` (built at head ``wire["version"]``) once, reusing ``previous``.

    Keys are sorted so equal content always hashes equally (row order from the
    database is not guaranteed everywhere). Equal content keeps the previous version
    and body: only ``head`` moves.
    """
    content = {k: v for k, v in wire.items() if k != "version"}
    text = json.dumps(content, separators=(",", ":"), sort_keys=True).encode()
    return encode_content(wire["environment"], wire["version"], text, previous)


def encode_content(
    environment: str,
    head: int,
    text: bytes | Sequence[bytes],
    previous: EncodedSnapshot | None,
    digest: str | None = None,
) -> EncodedSnapshot:
    """The snapshot whose content (everything but ``version``) serialises to ``text``.

    ``text`` is a JSON object with sorted keys, as ``encode_snapshot`` writes it, or
    those bytes in pieces whose first is ``{`` (the incremental build assembles the
    same bytes from parts, and passes their SHA-256 ``digest``). The body is joined
    once, only when the content is new.
    """
    if isinstance(text, bytes):
        digest = digest or hashlib.sha256(text).hexdigest()
        rest: Sequence[bytes | memoryview] = (memoryview(text)[1:],)
    else:
        assert digest is not None and text[0] == b"{"  # the parts hand their SHA-256
        rest = text[1:]
    if previous is not None and previous.content_hash == digest:
        return replace(previous, head=max(head, previous.head))
    body = b"".join((b'{"version":%d,' % head, *rest))
    return EncodedSnapshot(environment, head, head, digest, body)
