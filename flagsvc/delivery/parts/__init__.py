"""Incremental snapshot builds: re-read only the flags and cohorts a change touched.

A full build reads every live flag, cohort and member of the environment and
serialises them all: 60-250 ms for 200 flags and 200 cohorts on this machine, seconds
for 5,000. Yet a change touches one flag or one cohort. ``SnapshotBuilder`` keeps, per
environment, each flag's and each cohort's wire and its serialised text, and the audit
head they were read at. The audit log says what changed since: every change that can
alter a snapshot records an event naming its flag (and environment, for a state) or its
cohort. So a build reads the events since the parts' head, re-reads just the flags and
cohorts they name, and joins the kept texts into the body, byte for byte what
``encode_snapshot`` writes for a full build. A change that names nothing in this
environment (another environment's state, an objective, a token) re-reads nothing.

Members are not re-read: a member event names the members it added or removed (one
for an opt-in, up to the audit's sample of 20 for a bulk change, whose count says
whether that is all; the rest are in the member journal under the event's ``seq``),
and the build applies them to the cohort's sorted list and to
its text, kept in chunks of ``CHUNK`` members so that only the chunk a member lands in
is serialised again. Applying them in ``seq`` order gives each member's state at the
new head whatever the parts held before (an add or a removal *sets* membership), so a
member change that a whole read had already seen is harmless. A bulk change whose keys
the journal no longer holds (or that changes more than a quarter of the cohort), a new
or deleted cohort, and a cohort a flag starts using are read whole; a rules or opt-in
edit re-reads the cohort's row only.

Modules: ``events`` (what the events since a build say to re-read), ``journal`` (the
keys of bulk member changes beyond the events' samples), ``cohort`` (a
cohort's part, its members in chunks), ``sections`` (an environment's parts joined into
a body), ``builder`` (``SnapshotBuilder``: when to build whole, what to re-read).
"""

from flagsvc.delivery.parts.builder import FULL_EVERY_SECONDS
from flagsvc.delivery.parts.builder import MEMBERS_EVERY_SECONDS
from flagsvc.delivery.parts.builder import SnapshotBuilder
from flagsvc.delivery.parts.cohort import CHUNK
from flagsvc.delivery.parts.cohort import FEW
from flagsvc.delivery.parts.cohort import CohortPart
from flagsvc.delivery.parts.cohort import Members
from flagsvc.delivery.parts.events import MAX_EVENTS
from flagsvc.delivery.parts.events import MEMBER_ACTIONS
from flagsvc.delivery.parts.events import ROW_ACTIONS
from flagsvc.delivery.parts.events import UNSEEN
from flagsvc.delivery.parts.events import Dirty
from flagsvc.delivery.parts.events import MemberChanges
from flagsvc.delivery.parts.events import touched

__all__ = [
    "CHUNK",
    "FEW",
    "FULL_EVERY_SECONDS",
    "MAX_EVENTS",
    "MEMBERS_EVERY_SECONDS",
    "MEMBER_ACTIONS",
    "ROW_ACTIONS",
    "UNSEEN",
    "CohortPart",
    "Dirty",
    "MemberChanges",
    "Members",
    "SnapshotBuilder",
    "touched",
]
