"""The user keys of each bulk member change, kept a while for the snapshot build.

A bulk member event names a sample of ``cohorts.AUDIT_SAMPLE`` keys (the audit is read
by people and chained; a 100,000-key list has no place in it). The incremental snapshot
build needs every key to apply the change to a cohort it holds instead of re-reading a
million members, so the keys go here, under the event's ``seq``, in the same
transaction. The build only ever reads events newer than its last full build, and more
than ``delivery.parts.MAX_EVENTS`` of them make a full build, so only the newest events'
keys are kept; a build that finds fewer keys than the event's count reads the cohort
whole, as before this table.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger
from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from flagsvc.storage.models import CohortMemberChange

KEPT_EVENTS = 2_000
"""Journal rows are dropped once this many audit events follow theirs (at least the
build's ``MAX_EVENTS``: an older event always means a full build)."""

MAX_KEYS = 100_000
"""A bulk change of more keys is not journalled: applying them one by one costs as much
as re-reading the cohort, which the build then does."""

_TABLE = CohortMemberChange.metadata.tables[CohortMemberChange.__tablename__]
_UNNESTED = insert(_TABLE).from_select(
    ["seq", "user_key"],
    select(bindparam("seq", type_=BigInteger), func.unnest(bindparam("keys", type_=ARRAY(String)))),
)
"""PostgreSQL: the keys as one array parameter, one statement (a multi-row INSERT of
100,000 keys took 4-6 s here, this 1.6 s)."""


def record(session: Session, seq: int, keys: Sequence[str]) -> None:
    """Keep ``keys`` under event ``seq`` (unless too many), and forget old events' keys."""
    session.execute(
        delete(CohortMemberChange)
        .where(CohortMemberChange.seq <= seq - KEPT_EVENTS)
        .execution_options(synchronize_session=False)
    )
    if len(keys) > MAX_KEYS:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_UNNESTED, {"seq": seq, "keys": list(keys)})
    else:
        session.execute(insert(_TABLE), [{"seq": seq, "user_key": key} for key in keys])
