"""``flagsvc demo``: a realistic quarter of staged releases, played through the services.

Nothing is written with raw SQL: every objective, cohort, flag, stage move, readiness
mark and launch goes through the same service functions the API calls, with a
simulated clock that walks the 13 weeks up to now. So the audit chain is valid, the
timelines and flow metrics have a real history to read, and the data shows what the
product is for: features reach early adopters first, some wait weeks for marketing
readiness, launches run on schedule, one flag is killed and resumed, one rolled back,
a few retired, and a couple of long-released flags stop being evaluated (stale).
Marketing's Slack webhook hears of it all in production: its delivery log is played
by the webhook worker's own functions (``services.demo_webhooks``).

Each simulated day is one transaction; the scheduler runs due launches at 09:05, when
the webhook worker also looks, and again once the day's changes are written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain.errors import ConflictError
from flagsvc.domain.roles import Role
from flagsvc.domain.stages import Stage
from flagsvc.services import cohorts
from flagsvc.services import demo_webhooks
from flagsvc.services import environments
from flagsvc.services import flag_states
from flagsvc.services import flags
from flagsvc.services import flow
from flagsvc.services import launches
from flagsvc.services import okrs
from flagsvc.services import promise_board
from flagsvc.services import readiness
from flagsvc.services import scheduler
from flagsvc.services import sdk_metrics
from flagsvc.services import value_streams
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Actor
from flagsvc.services.context import Change
from flagsvc.services.early_adopters import Sketches
from flagsvc.services.flag_states import Where
from flagsvc.storage.db import Database
from flagsvc.storage.models import AuditEvent
from flagsvc.storage.models import Flag
from flagsvc.storage.models import KeyResult

DAYS = 91
ENGINEERS = tuple(Actor(name, Role.ENGINEER) for name in ("dana", "li", "sam"))
MARKETING = tuple(Actor(name, Role.MARKETING) for name in ("maria", "jo"))
ITEMS = ("docs", "announcement", "support_enablement", "sales_briefing")
SHORT_CHECKLIST = [{"key": "support_enablement", "label": "Support team enabled", "required": True}]

OBJECTIVES = (
    ("Checkout that converts", "payments", (
        ("Checkout conversion", "conversion rate", 31, 36, 33.5, "%"),
        ("Failed payments", "failed payment share", 1.2, 0.5, 0.8, "%"),
    )),
    ("Onboarding in minutes", "growth", (
        ("Time to first value", "median hours", 72, 24, 40, "h"),
        ("Week-1 activation", "activated accounts", 40, 55, 46, "%"),
        ("Self-serve setup", "accounts set up without help", 35, 60, 41, "%"),
    )),
    ("A platform customers trust", "platform", (
        ("Monthly uptime", "availability", 99.9, 99.95, 99.93, "%"),
        ("P1 incidents", "incidents per month", 4, 1, 2, "incidents"),
    )),
    ("Win with design partners", "enterprise", (
        ("Pilots converted to contracts", "pilots converted", 2, 6, 3, "pilots"),
        ("SSO adoption", "enterprise accounts on SSO", 20, 70, 35, "%"),
    )),
)  # fmt: skip
VALUE_STREAMS = (  # key, name, description; each objective's owner names its stream
    ("payments", "Checkout & payments", "Everything between the cart and the receipt."),
    ("growth", "Onboarding & growth", "First visit to activated account."),
    ("platform", "Platform", "Reliability, performance and the public API."),
    ("enterprise", "Enterprise", "What design partners and large accounts need."),
)
MEASURED = (  # objective index, title, metric, value stream, baseline, target: from the audit
    (0, "Checkout flow time", "flow_time_p50", "payments", 30, 14),
    (1, "Onboarding work waiting for marketing", "wait_for_readiness_p50", "growth", 20, 5),
    (2, "Platform work in flight", "flow_load", "platform", 6, 3),
    (3, "Enterprise flow time (p85)", "flow_time_p85", "enterprise", 45, 21),
)
"""Measured key results, one per stream, added after the typed ones (``FLAGS`` name key
results by their index in creation order)."""
COHORTS = (  # key, name, rule (attribute, op, values), member pattern and count, opt-in
    ("beta-testers", "Beta testers", ("plan", "eq", ["beta"]), "beta-user-{:04d}", 300, True),
    ("internal-staff", "Internal staff", ("email", "ends_with", ["@example.com"]),
     "staff-{:02d}", 40, False),
    ("design-partners", "Design partners", ("account_tier", "in", ["enterprise-pilot"]),
     "acct-partner-{:02d}", 12, False),
)  # fmt: skip
PLANS = {  # days after creation: what happens in production (the other environments lead)
    "smooth": "6 ea, 14 ready, 15 general 25, 16 general 60, 17 general 100, 19 released",
    "held": "4 ea, 30 ready, 31 launch 50, 35 general 100, 38 released",
    "scheduled": "7 ea, 16 ready, 17 launch 100, 22 released",
    "waiting": "8 ea",
    "ramping": "5 ea, 13 ready, 14 general 10, 18 general 30",
    "incident": "4 ea, 12 ready, 13 general 50, 14 kill, 16 resume, 17 general 100, 20 released",
    "rollback": "4 ea, 10 ready, 11 general 30, 12 rollback, 17 general 30, 19 general 100, "
    "21 released",
    "retired": "3 ea, 8 ready, 9 general 100, 11 released, 45 retire",
    "abandoned": "5 ea, 19 retire",
    "quickfix": "1 ea, 2 ready, 3 general 100, 4 released",
    "dark": "",
}
FLAGS = (  # key, flow item, key result (index), plan, day created
    ("one-click-checkout", "feature", 0, "held", 2),
    ("saved-cards", "feature", 0, "smooth", 5),
    ("apple-pay", "feature", 0, "scheduled", 20),
    ("address-autocomplete", "feature", 0, "ramping", 60),
    ("new-pricing-page", "feature", 0, "waiting", 70),
    ("smart-payment-retry", "feature", 1, "smooth", 10),
    ("clearer-payment-errors", "defect", 1, "quickfix", 15),
    ("duplicate-charge-fix", "defect", 1, "quickfix", 30),
    ("csv-export-escaping", "defect", 1, "quickfix", 78),
    ("guided-setup", "feature", 2, "held", 8),
    ("sample-data-workspace", "feature", 2, "smooth", 14),
    ("import-from-csv", "feature", 2, "waiting", 55),
    ("onboarding-checklist", "feature", 3, "incident", 12),
    ("welcome-email-series", "feature", 3, "scheduled", 35),
    ("activation-nudges", "feature", 3, "waiting", 62),
    ("timezone-fix", "defect", 3, "quickfix", 66),
    ("team-invites-v2", "feature", 4, "rollback", 18),
    ("self-serve-billing", "feature", 4, "held", 25),
    ("template-gallery", "feature", 4, "dark", 75),
    ("dark-mode", "feature", 4, "dark", 80),
    ("status-page-embed", "feature", 5, "smooth", 22),
    ("multi-region-failover", "risk", 5, "ramping", 40),
    ("db-connection-pooling", "debt", 5, "quickfix", 9),
    ("legacy-api-sunset", "debt", 6, "retired", 3),
    ("rate-limit-hardening", "risk", 6, "quickfix", 33),
    ("search-index-rebuild", "debt", 6, "abandoned", 28),
    ("incident-banner", "feature", 6, "smooth", 45),
    ("memory-leak-fix", "defect", 6, "quickfix", 50),
    ("audit-log-export", "feature", 7, "scheduled", 30),
    ("custom-roles", "feature", 7, "incident", 38),
    ("pilot-usage-dashboard", "feature", 7, "smooth", 52),
    ("sandbox-environments", "feature", 7, "rollback", 44),
    ("legacy-reports-removal", "debt", 7, "retired", 11),
    ("sso-saml", "feature", 8, "held", 6),
    ("scim-provisioning", "feature", 8, "waiting", 48),
)
NAMES = {  # key: (name, description), as a product team would write them
    "one-click-checkout": (
        "One-click checkout",
        "Returning customers pay with their saved card in one step.",
    ),
    "saved-cards": ("Saved cards", "Customers keep a card on file for the next purchase."),
    "apple-pay": ("Apple Pay", "Apple Pay as a payment method on iOS and Safari."),
    "address-autocomplete": (
        "Address autocomplete",
        "Suggests the full address after a few characters.",
    ),
    "new-pricing-page": ("New pricing page", "Plans side by side, with a yearly toggle."),
    "smart-payment-retry": (
        "Smart payment retry",
        "Retries soft-declined cards at the hour most likely to succeed.",
    ),
    "clearer-payment-errors": (
        "Clearer payment errors",
        "Says why a payment failed and what to do next.",
    ),
    "duplicate-charge-fix": ("Duplicate charge fix", "A double click no longer charges twice."),
    "csv-export-escaping": (
        "CSV export escaping",
        "Commas and quotes in names no longer break exported files.",
    ),
    "guided-setup": ("Guided setup", "A five-step wizard for a new workspace."),
    "sample-data-workspace": (
        "Sample data workspace",
        "New accounts start with example projects to explore.",
    ),
    "import-from-csv": ("Import from CSV", "Bring contacts over from a spreadsheet."),
    "onboarding-checklist": ("Onboarding checklist", "What to do first, ticked off as it happens."),
    "welcome-email-series": (
        "Welcome email series",
        "Three emails over the first week, each with one tip.",
    ),
    "activation-nudges": ("Activation nudges", "In-app hints for accounts that stall in week one."),
    "timezone-fix": ("Time zone fix", "Reminders arrive at the user's local time."),
    "team-invites-v2": ("Team invites v2", "Invite a whole team by pasting email addresses."),
    "self-serve-billing": (
        "Self-serve billing",
        "Change plan, seats and invoices without support.",
    ),
    "template-gallery": ("Template gallery", "Start a project from a curated template."),
    "dark-mode": ("Dark mode", "Follows the system's light or dark setting."),
    "status-page-embed": ("Status page embed", "Live service status inside the help widget."),
    "multi-region-failover": (
        "Multi-region failover",
        "Traffic moves to the second region when the first fails.",
    ),
    "db-connection-pooling": (
        "Database connection pooling",
        "One pool per instance instead of a connection per request.",
    ),
    "legacy-api-sunset": (
        "Legacy API sunset",
        "Answers v1 API calls with a deprecation notice, then 410.",
    ),
    "rate-limit-hardening": ("Rate limit hardening", "Per-token limits on the public API."),
    "search-index-rebuild": ("Search index rebuild", "Rebuilds the search index without downtime."),
    "incident-banner": ("Incident banner", "Shows an ongoing incident at the top of the app."),
    "memory-leak-fix": ("Memory leak fix", "Workers no longer grow until they are restarted."),
    "audit-log-export": ("Audit log export", "Enterprise admins download their audit log as CSV."),
    "custom-roles": ("Custom roles", "Admins define roles beyond owner, member and guest."),
    "pilot-usage-dashboard": (
        "Pilot usage dashboard",
        "Design partners see how their pilot is used.",
    ),
    "sandbox-environments": ("Sandbox environments", "A copy of the workspace to try changes in."),
    "legacy-reports-removal": ("Legacy reports removal", "Removes the old reports module."),
    "sso-saml": ("SSO (SAML)", "Enterprise sign-in through the customer's identity provider."),
    "scim-provisioning": (
        "SCIM provisioning",
        "Users are created and removed from the identity provider.",
    ),
}
QUIET = frozenset({"saved-cards", "db-connection-pooling"})
"""Released long ago and no longer evaluated: what the stale-flags report should find."""

Step = Callable[[Session, Change], object]


@dataclass(frozen=True, slots=True)
class Summary:
    """What the demo loaded, for the operator."""

    objectives: int
    flags: int
    cohorts: int
    events: int
    launches_ran: int
    bottleneck: str | None
    value_streams: int = 0
    holds_back: str | None = None
    measured_key_results: int = 0
    safe_to_promise: int = 0
    webhook_log: demo_webhooks.Log | None = None

    def lines(self) -> list[str]:
        """Human-readable lines for stderr."""
        return [
            f"demo quarter loaded: {self.value_streams} value streams, {self.objectives} "
            f"objectives, {self.flags} flags, {self.cohorts} cohorts, {self.events} audit events",
            f"scheduled launches run: {self.launches_ran}",
            f"production bottleneck over the last 90 days: {self.bottleneck or 'none'}",
            f"the stream and step holding delivery back: {self.holds_back or 'none'}",
            f"measured key results (weekly history from the audit): {self.measured_key_results}",
            f"features safe to promise in production: {self.safe_to_promise}",
            "try: /ui/value-streams, /ui/okrs, /ui/promise-board; GET /api/v1/flow/value-streams,"
            " GET /api/v1/promise-board, GET /api/v1/stale-flags",
            *self.webhook_lines(),
        ]

    def webhook_lines(self) -> list[str]:
        """The webhook delivery log: how many deliveries, and where to look at them."""
        return [] if self.webhook_log is None else self.webhook_log.lines()


def already_loaded(session: Session) -> bool:
    """Tell whether any demo flag exists (the demo then refuses, changing nothing)."""
    keys = [spec[0] for spec in FLAGS]
    return session.scalar(select(Flag.id).where(Flag.key.in_(keys)).limit(1)) is not None


def load(database: Database, now: datetime, sketches: Sketches | None = None) -> Summary | None:
    """Play the quarter ending at ``now``; None (and nothing written) if it was loaded.

    The audit is a chain in time order, so the quarter can only be written after the
    newest event: a database whose history reaches into the quarter is refused.

    :raise ConflictError: the audit holds an event newer than the quarter's start.
    """
    start = (now - timedelta(days=DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    with database.read() as session:
        if already_loaded(session):
            return None
        newest = session.scalar(select(func.max(AuditEvent.occurred_at)))
    if newest is not None and newest >= start:
        raise ConflictError(
            f"the demo plays the 13 weeks up to now, but this database's audit already "
            f"records {newest:%Y-%m-%d %H:%M} UTC, and the audit's times never go back; "
            "load the demo into a database of its own (make demo)"
        )
    with database.write() as session:  # the environments exist from the quarter's first day
        environments.ensure_default_environments(session, Change(SYSTEM, start, "demo-setup"))
    days = _schedule(start)
    receiver = demo_webhooks.Receiver(now - timedelta(days=demo_webhooks.OUTAGE_DAYS))
    ran = 0
    for day in range(DAYS + 1):
        tick = start + timedelta(days=day, hours=9, minutes=5)
        if tick <= now:
            ran += sum(o.ran for o in scheduler.run_due_launches(database, _fixed(tick)))
            demo_webhooks.look(database, receiver, tick)
        with database.write() as session:
            for at, actor, step in sorted(days.get(day, []), key=lambda s: s[0]):
                if at <= now:
                    step(session, Change(actor, at, f"demo-{day}"))
        demo_webhooks.deliver(database, receiver, min(tick + timedelta(hours=9), now))
    counted = sketches or Sketches()
    _report_evaluations(database, now, counted)
    demo_webhooks.look(database, receiver, now)
    return _summary(database, now, ran, counted)


def _fixed(at: datetime) -> Callable[[], datetime]:
    """A clock stopped at ``at`` (the simulated moment the scheduler looks)."""
    return lambda: at


def _schedule(start: datetime) -> dict[int, list[tuple[datetime, Actor, Step]]]:
    """Every step of the quarter, per day: (time, actor, what to do)."""
    days: dict[int, list[tuple[datetime, Actor, Step]]] = {}
    for day, minute, actor, step in _steps():
        at = start + timedelta(days=day, hours=9, minutes=30 + minute)
        days.setdefault(day, []).append((at, actor, step))
    return days


def _steps() -> Iterator[tuple[int, int, Actor, Step]]:
    yield 0, 0, ENGINEERS[0], _create_okrs_and_cohorts
    yield 0, 1, demo_webhooks.ADMIN, demo_webhooks.create
    for n, (key, item, kr, plan, begin) in enumerate(FLAGS):
        engineer, minute = ENGINEERS[n % len(ENGINEERS)], (n * 11) % 420
        yield begin, minute, engineer, _creator(key, item, kr, plan)
        for offset, op, percent in plan_steps(PLANS[plan]):
            yield from _expand(key, (begin, begin + offset), minute, (op, percent), n)


def plan_steps(plan: str) -> list[tuple[int, str, int]]:
    """``"4 ea, 9 general 50"`` as ``[(4, "ea", 0), (9, "general", 50)]``."""
    steps = []
    for part in filter(None, (p.split() for p in plan.split(","))):
        steps.append((int(part[0]), part[1], int(part[2]) if len(part) > 2 else 0))
    return steps


def _expand(
    key: str, days: tuple[int, int], minute: int, op: tuple[str, int], n: int
) -> Iterator[tuple[int, int, Actor, Step]]:
    """One plan step (``days``: the flag's creation and the step's day) as service calls."""
    (created, day), (name, percent) = days, op
    engineer, marketer = ENGINEERS[n % 3], MARKETING[n % 2]
    if name == "ready":
        for back, item in enumerate(reversed(ITEMS)):  # the last item is ticked on the day
            yield max(day - back, created), minute + 1, marketer, _marker(key, item)
    elif name == "launch":
        yield day, minute + 2, marketer, _launcher(key, percent)
    elif name in ("kill", "resume"):
        yield day, minute, engineer, _switch(key, killed=name == "kill")
    else:
        yield from _stage_steps(key, day, minute, op, engineer)


def _stage_steps(
    key: str, day: int, minute: int, op: tuple[str, int], engineer: Actor
) -> Iterator[tuple[int, int, Actor, Step]]:
    name, percent = op
    if name == "ea":  # development and staging lead production by a day
        yield day - 1, minute + 1, engineer, _mover(key, "development", Stage.RELEASED)
        yield day - 1, minute + 2, engineer, _mover(key, "staging", Stage.EARLY_ACCESS)
        yield day, minute, engineer, _mover(key, "production", Stage.EARLY_ACCESS)
        yield day + 1, minute + 3, engineer, _mover(key, "staging", Stage.RELEASED)
    elif name == "retire":
        for environment in ("development", "staging", "production"):
            yield day, minute, engineer, _mover(key, environment, Stage.RETIRED)
    else:
        stage = {"general": Stage.GENERAL, "released": Stage.RELEASED}.get(name)
        stage = stage or Stage.EARLY_ACCESS  # "rollback": back to early adopters only
        ramp = Decimal(percent) if stage is Stage.GENERAL else None
        yield day, minute, engineer, _mover(key, "production", stage, ramp)


def _create_okrs_and_cohorts(session: Session, change: Change) -> None:
    period = f"{change.at.year}-Q{(change.at.month - 1) // 3 + 1}"
    for key, name, description in VALUE_STREAMS:
        fields = {"key": key, "name": name, "description": description}
        value_streams.create_stream(session, change, fields)
    made = []
    for title, owner, key_results in OBJECTIVES:
        fields = {"title": title, "period": period, "owner": owner, "value_stream": owner}
        objective = okrs.create_objective(session, change, fields)
        made.append(objective.id)
        for kr_title, metric, baseline, target, current, unit in key_results:
            kr = {"title": kr_title, "metric": metric, "baseline": baseline, "target": target}
            kr |= {"current": current, "unit": unit}
            okrs.create_key_result(session, change, objective.id, kr)
    for index, title, metric, stream, baseline, target in MEASURED:
        measure = {"metric": metric, "environment": "production", "value_stream": stream}
        measured_kr: dict[str, object] = {"title": title, "metric": metric.replace("_", " ")}
        measured_kr |= {"baseline": baseline, "target": target, "measure": measure}
        okrs.create_key_result(session, change, made[index], measured_kr)
    for key, name, (attribute, op, values), member, count, opt_in in COHORTS:
        rules = [{"attribute": attribute, "op": op, "values": values}]
        spec = cohorts.CohortSpec(key, name, rules=rules, opt_in=opt_in)
        cohorts.create_cohort(session, change, spec)
        members = [member.format(n) for n in range(1, count + 1)]
        cohorts.change_members(session, change, key, members, [])


def _creator(key: str, item: str, kr_index: int, plan: str) -> Step:
    def create(session: Session, change: Change) -> None:
        kr_ids = session.scalars(select(KeyResult.id).order_by(KeyResult.id)).all()
        name, description = NAMES[key]
        fields = {"key": key, "name": name, "description": description, "flow_item": item,
                  "key_result_id": kr_ids[kr_index]}  # fmt: skip
        flags.create_flag(session, change, fields)
        if plan == "quickfix":  # a fix needs support briefed, not a launch campaign
            marketer = Change(MARKETING[1], change.at, change.request_id)
            readiness.set_checklist(session, marketer, key, SHORT_CHECKLIST)
        for environment in ("staging", "production"):
            where = Where(key, environment)
            flag_states.set_cohorts(session, change, where, _cohorts_for(item, kr_index))

    return create


def _cohorts_for(item: str, kr_index: int) -> list[str]:
    if item != "feature":
        return ["internal-staff"]
    return ["internal-staff", "design-partners" if kr_index >= 7 else "beta-testers"]


def _mover(key: str, environment: str, stage: Stage, percent: Decimal | None = None) -> Step:
    def move(session: Session, change: Change) -> None:
        where = Where(key, environment)
        current = flag_states.locate(session, where).state
        if current.stage != stage.value or stage is Stage.GENERAL:
            flag_states.move_stage(session, change, where, stage, percent)

    return move


def _marker(key: str, item: str) -> Step:
    def mark(session: Session, change: Change) -> None:
        flag = flags.get_flag(session, key)
        if any(i.item_key == item for i in flag.readiness_items):
            note = f"{item.replace('_', ' ')} done"
            readiness.mark_item(session, change, key, item, {"done": True, "note": note})

    return mark


def _launcher(key: str, percent: int) -> Step:
    def schedule(session: Session, change: Change) -> None:
        at = change.at.replace(hour=9, minute=0) + timedelta(days=2)
        where = Where(key, "production")
        launches.schedule_launch(session, change, where, at, rollout_percent=Decimal(percent))

    return schedule


def _switch(key: str, *, killed: bool) -> Step:
    def flip(session: Session, change: Change) -> None:
        flag_states.set_killed(session, change, Where(key, "production"), killed)

    return flip


def _report_evaluations(database: Database, now: datetime, sketches: Sketches) -> None:
    """SDK counts where flags are on (the quiet ones last spoke 35 days ago); flags in
    early access or ramping report a third of them through a cohort, for a few hundred
    distinct (hashed) early adopters each."""
    on = ("early_access", "general", "released")
    with database.write() as session:
        for environment in ("development", "staging", "production"):
            counts = []
            for n, (key, *_rest) in enumerate(FLAGS):
                stage = flag_states.locate(session, Where(key, environment)).state.stage
                if stage in on:
                    counts.append(_evaluations(key, n, stage, now))
            sdk_metrics.record_evaluations(session, environment, counts, now, sketches)


def _evaluations(key: str, n: int, stage: str, now: datetime) -> sdk_metrics.EvaluationCount:
    total = 1_000 * (n + 1)
    if stage == "released":
        return sdk_metrics.EvaluationCount(key, total, now - _silence(key))
    users = 120 + 37 * (n % 9)
    adopters = tuple(
        hashlib.blake2b(f"{key}\0user-{u}".encode(), digest_size=8).hexdigest()
        for u in range(users)
    )
    return sdk_metrics.EvaluationCount(key, total, now - _silence(key), total // 3, adopters)


def _silence(key: str) -> timedelta:
    return timedelta(days=35) if key in QUIET else timedelta(hours=1)


def _summary(database: Database, now: datetime, ran: int, sketches: Sketches) -> Summary:
    with database.read() as session:
        report = flow.flow_report(session, flow.FlowQuery(), now)
        events = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
        streams = value_streams.compare(session, flow.FlowQuery(), now).holds_back
        board = promise_board.board(session, promise_board.PromiseQuery(), now, sketches)
        hooks = demo_webhooks.log(session)
    found = report.metrics.bottleneck
    named = None if found is None else f"{found.stage} (median {found.median_days} days)"
    held = None
    if streams is not None:
        held = (
            f"{streams['value_stream']}, {streams['step']} (median {streams['median_days']} days)"
        )
    return Summary(
        len(OBJECTIVES), len(FLAGS), len(COHORTS), events, ran, named,
        len(VALUE_STREAMS), held, len(MEASURED), len(board.items), hooks,
    )  # fmt: skip
