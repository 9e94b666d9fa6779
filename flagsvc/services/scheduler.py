"""Runs scheduled launches when they are due, exactly once, however many schedulers run.

Each due launch is claimed in its own transaction with ``SELECT … FOR UPDATE SKIP
LOCKED`` on its flag state: a second scheduler (another instance, or the CLI beside
``serve --with-scheduler``) skips the claimed row instead of waiting for it, and once
the first commits, ``launch_at`` is cleared so nobody finds it again. SQLite has no
row locks, but its write transactions are serialised (``BEGIN IMMEDIATE``), which
gives the same guarantee for the embedded default.

Inside the claim the launch is re-checked: a flag that lost readiness, left early
access or was killed since the launch was scheduled is not launched; its launch is
cancelled with an audited reason (``flag.launch_skipped``). Otherwise the stage moves
through ``flag_states.move_stage``, the path the API takes, so the readiness gate and
the ``flag.stage_changed`` event are identical, and ``flag.launch_ran`` records when it
was planned and when it ran. The actor is ``scheduler`` (role ``system``).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain.actions import Action
from flagsvc.domain.stages import FULL_ROLLOUT_BASIS_POINTS
from flagsvc.domain.stages import Stage
from flagsvc.domain.stages import to_percent
from flagsvc.observability import metrics
from flagsvc.services import audit
from flagsvc.services import flag_states
from flagsvc.services.context import Actor
from flagsvc.services.context import Change
from flagsvc.services.flag_states import Located
from flagsvc.services.flag_states import Where
from flagsvc.storage.db import Database
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagState

log = logging.getLogger(__name__)

SCHEDULER = Actor(name="scheduler", role=None)
"""The audit's actor for launches the scheduler runs (``role_name`` is ``system``)."""
DEFAULT_INTERVAL = 30.0
"""Seconds between two looks for due launches."""
MAX_PER_RUN = 500
"""Most launches one pass runs; the rest wait for the next pass."""
CLAIM_BATCH = 20
"""Due launches looked at per claim (the ones other schedulers hold are skipped)."""


@dataclass(frozen=True, slots=True)
class LaunchOutcome:
    """What happened to one due launch."""

    flag_key: str
    environment: str
    planned_at: datetime
    ran: bool
    reason: str | None = None

    def sentence(self) -> str:
        """What happened, as an operator reads it in the log (not the dataclass's repr)."""
        planned = self.planned_at.strftime("%Y-%m-%d %H:%M UTC")
        where = f"the launch of {self.flag_key} in {self.environment} planned for {planned}"
        if self.ran:
            return f"{where[0].upper()}{where[1:]} ran."
        return f"{where[0].upper()}{where[1:]} was skipped: {self.reason}."


def run_due_launches(database: Database, clock: Callable[[], datetime]) -> list[LaunchOutcome]:
    """Run every launch due by now, one transaction each; return what was done.

    A launch whose transaction fails (say, the database dropped the connection) is
    logged and left due for the next pass, not retried in this one, so a single bad
    row can neither spin the pass nor hold up the launches after it. A failure before
    anything was claimed (the database is down) ends the pass instead of spinning.
    Counted in ``flagsvc_scheduler_launches_total`` and ``flagsvc_scheduler_runs_total``.
    """
    outcomes: list[LaunchOutcome] = []
    claimed: set[int] = set()
    failed = False
    while len(claimed) < MAX_PER_RUN:
        before = len(claimed)
        try:
            with database.write() as session:
                outcome = run_next_due(session, scheduler_change(clock()), claimed)
        except Exception:  # the loop must survive anything one launch does
            log.exception("A scheduled launch failed; it stays due for the next pass.")
            failed = True
            if len(claimed) == before:
                break  # nothing claimed: the database itself failed
            metrics.SCHEDULER_LAUNCHES.labels("failed").inc()
            continue
        if outcome is None:
            break
        outcomes.append(outcome)
        metrics.SCHEDULER_LAUNCHES.labels("ran" if outcome.ran else "skipped").inc()
    metrics.SCHEDULER_RUNS.labels("failed" if failed else "ok").inc()
    return outcomes


def scheduler_change(at: datetime) -> Change:
    """A change made by the scheduler at ``at``."""
    return Change(actor=SCHEDULER, at=at, request_id=f"scheduler-{uuid.uuid4().hex[:12]}")


def run_next_due(
    session: Session, change: Change, claimed: set[int] | None = None
) -> LaunchOutcome | None:
    """Claim and run the earliest launch due at ``change.at`` (None: nothing left to claim).

    ``claimed`` collects the state ids claimed in this pass (and skips them), so a
    launch that failed is not claimed again until the next pass.

    Locks go in the API's order (flag ``FOR SHARE``, then its state ``FOR UPDATE``) so
    a claim never deadlocks with a stage move or a readiness edit; the state lock
    skips rows another scheduler holds and re-checks that the launch is still due.
    """
    claimed = set() if claimed is None else claimed
    due = (FlagState.launch_at.is_not(None), FlagState.launch_at <= change.at)
    candidates = select(FlagState.id, FlagState.flag_id).where(*due)
    if claimed:
        candidates = candidates.where(FlagState.id.not_in(sorted(claimed)))
    candidates = candidates.order_by(FlagState.launch_at, FlagState.id).limit(CLAIM_BATCH)
    for state_id, flag_id in session.execute(candidates).all():
        session.execute(select(Flag.id).where(Flag.id == flag_id).with_for_update(read=True))
        claim = select(FlagState).where(FlagState.id == state_id, *due)
        state = session.scalar(claim.with_for_update(skip_locked=True, of=FlagState))
        if state is not None:
            claimed.add(state_id)
            where = Where(state.flag.key, state.environment.key)
            return _run(session, change, flag_states.locate(session, where, lock=True))
    return None


def _run(session: Session, change: Change, locked: Located) -> LaunchOutcome:
    state, where = locked.state, Where(locked.flag.key, locked.state.environment.key)
    planned = state.launch_at
    assert planned is not None  # claimed rows have one
    reason = skip_reason(locked)
    if reason is not None:
        _skip(session, change, locked, reason)
        return LaunchOutcome(where.flag_key, where.environment, planned, ran=False, reason=reason)
    basis_points = state.launch_rollout_basis_points or FULL_ROLLOUT_BASIS_POINTS
    flag_states.move_stage(session, change, where, Stage.GENERAL, to_percent(basis_points))
    state.launch_rollout_basis_points = None
    after = {
        "planned_at": planned.isoformat(),
        "ran_at": change.at.isoformat(),
        "rollout_percent": float(to_percent(basis_points)),
    }
    before = {"launch_at": planned.isoformat()}
    flag_states.record(session, change, locked, Action.FLAG_LAUNCH_RAN, before, after)
    return LaunchOutcome(where.flag_key, where.environment, planned, ran=True)


def skip_reason(locked: Located) -> str | None:
    """Why a due launch must not run now (None: it may), checked inside the claim."""
    state = locked.state
    if locked.missing_readiness:
        return "the flag is no longer ready; not done: " + ", ".join(locked.missing_readiness)
    if state.stage != Stage.EARLY_ACCESS.value:
        return f"the flag is in {state.stage.replace('_', ' ')}, not early access"
    if state.killed:
        return "the kill switch is on"
    return None


def _skip(session: Session, change: Change, locked: Located, reason: str) -> None:
    """Cancel the launch and say why, in the audit."""
    state = locked.state
    planned = audit.iso(state.launch_at)
    before = {"launch_at": planned}
    state.launch_at, state.launch_rollout_basis_points = None, None
    after = {"launch_at": None, "planned_at": planned, "reason": reason}
    flag_states.record(session, change, locked, Action.FLAG_LAUNCH_SKIPPED, before, after)
    log.info(
        "The launch of %s in %s was skipped: %s.", locked.flag.key, state.environment.key, reason
    )


def run_forever(
    database: Database,
    clock: Callable[[], datetime],
    interval: float = DEFAULT_INTERVAL,
    stop: threading.Event | None = None,
) -> None:
    """Run due launches every ``interval`` seconds until ``stop`` is set."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            for outcome in run_due_launches(database, clock):
                log.info(outcome.sentence())
        except Exception:  # e.g. the database is down: try again next time
            log.exception(
                "The scheduler could not look for due launches; it tries again in %g s.", interval
            )
        stop.wait(interval)


def start_in_background(
    database: Database, clock: Callable[[], datetime], interval: float = DEFAULT_INTERVAL
) -> threading.Event:
    """Start :func:`run_forever` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever,
        args=(database, clock, interval, stop),
        name="flagsvc-scheduler",
        daemon=True,
    )
    thread.start()
    return stop
