"""Flow report, value streams, measured key results and audit-by-flag latency over 5,000
flags, 50 value streams and 1,000,000 audit events.

    .venv/bin/python bench/flow_report.py [--database-url postgresql://…] [--write-docs]

Loads the data set with ``COPY`` into a PostgreSQL database the bench owns (created if
missing; its ``public`` schema dropped and re-migrated): valid stage histories per flag
and a valid audit hash chain (``--verify`` checks it); objectives spread over the value
streams, one measured key result per objective (bound to a flow metric over its stream).
Then times ``GET /api/v1/flow``, the value-stream comparison
(``GET /api/v1/flow/value-streams``), measured key results (one, with its weekly history,
and a page of objectives with theirs) and ``GET /api/v1/audit?flag=…`` in-process
through the Flask test client and runs
``EXPLAIN (ANALYZE, BUFFERS)`` on the SQL of one request of each. ``--write-docs``
writes figures and plans into ``docs/flow-performance.md`` (which explains the data).
Targets: flow, value streams and measured key results p95 < 500 ms, audit-by-flag
p95 < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine
from sqlalchemy import event

from flagsvc import create_app
from flagsvc.domain import audit_chain
from flagsvc.domain.roles import Role
from flagsvc.domain.variations import boolean_set
from flagsvc.services import audit
from flagsvc.services import credentials
from flagsvc.services import environments
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Change
from flagsvc.storage import migrate
from flagsvc.storage.db import Database

ENVIRONMENTS = {"development": 1, "staging": 2, "production": 3}
ITEMS = ("docs", "announcement", "support_enablement", "sales_briefing")  # as SEED_SQL
FLOW_ITEMS = ("feature", "feature", "feature", "defect", "risk", "debt")
NOW = datetime.now(UTC).replace(microsecond=0)
AUDIT_COLUMNS = (
    "seq", "occurred_at", "actor", "actor_role", "action", "entity_type", "entity_key",
    "flag_key", "environment", "before", "after", "request_id", "prev_hash", "hash",
)  # fmt: skip
DOCS = Path(__file__).resolve().parents[1] / "docs" / "flow-performance.md"
MARKER = "<!-- bench:start -->"


@dataclass
class FlagPlan:
    """One synthetic flag: its row values and the events of its history."""

    key: str
    flow_item: str
    key_result_id: int
    created: datetime
    stages: dict[str, tuple[str, int]] = field(default_factory=dict)
    ready_at: datetime | None = None
    events: list[tuple[datetime, str, str | None, Any, Any]] = field(default_factory=list)

    def add(self, at: datetime, action: str, env: str | None, before: Any, after: Any) -> None:
        if at <= NOW:
            self.events.append((at, action, env, before, after))

    def move(self, at: datetime, env: str, stage: str, percent: int = 0) -> None:
        if at > NOW:
            return
        old_stage, old_percent = self.stages.get(env, ("off", 0))
        before = {"stage": old_stage, "rollout_percent": float(old_percent)}
        direction = "forward" if stage != "early_access" or old_stage == "off" else "rollback"
        after = {"stage": stage, "rollout_percent": float(percent), "direction": direction}
        self.add(at, "flag.stage_changed", env, before, after)
        self.stages[env] = (stage, percent)


def _days(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(seconds=int(rng.uniform(low, high) * 86_400))


def plan_flag(n: int, rng: random.Random, key_results: int) -> FlagPlan:
    """A flag created in the last two years and whatever its history reached by now."""
    created = NOW - _days(rng, 0, 730)
    plan = FlagPlan(f"flag-{n:05d}", rng.choice(FLOW_ITEMS), 1 + n % key_results, created)
    after = {"key": plan.key, "flow_item": plan.flow_item, "key_result_id": plan.key_result_id}
    plan.add(plan.created, "flag.created", None, None, after)
    fate = rng.random()
    if fate > 0.1:
        _life(plan, rng, fate)
    return plan


def _life(plan: FlagPlan, rng: random.Random, fate: float) -> None:
    """Early access everywhere; then, by ``fate``: wait, ramp, or release (and retire)."""
    early = plan.created + _days(rng, 1, 10)
    plan.move(early - timedelta(days=1), "development", "released")
    plan.move(early - timedelta(hours=20), "staging", "early_access")
    plan.move(early, "production", "early_access")
    plan.move(early + timedelta(days=1), "staging", "released")
    if fate < 0.25:
        return  # still waiting for readiness
    ready = early + _days(rng, 0, 25)
    _readiness(plan, rng, ready)
    at = _ramp(plan, rng, ready + _days(rng, 0, 3), (10,) if fate < 0.35 else (10, 25, 50, 100))
    if fate >= 0.35:
        plan.move(at + _days(rng, 1, 5), "production", "released")
    retired = at + _days(rng, 20, 60)
    for env in ENVIRONMENTS if fate > 0.9 else ():
        plan.move(retired, env, "retired")


def _ramp(plan: FlagPlan, rng: random.Random, at: datetime, steps: tuple[int, ...]) -> datetime:
    for percent in steps:
        plan.move(at, "production", "general", percent)
        if percent == 50 and rng.random() < 0.05:  # an incident: killed, fixed, resumed
            plan.add(at, "flag.killed", "production", {"killed": False}, {"killed": True})
            back = at + _days(rng, 0.1, 2)
            plan.add(back, "flag.resumed", "production", {"killed": True}, {"killed": False})
        at += _days(rng, 0.5, 3)
    return at


def _readiness(plan: FlagPlan, rng: random.Random, ready: datetime) -> None:
    for back, item in enumerate(reversed(ITEMS)):
        mark = {"item": item, "done": True, "note": ""}
        plan.add(ready - timedelta(days=back), "readiness.item_marked", None, None, mark)
    plan.add(ready, "flag.ready", None, {"ready_at": None}, {"ready_at": ready.isoformat()})
    plan.ready_at = ready if ready <= NOW else None
    if rng.random() < 0.05:
        lost = ready + timedelta(hours=2)
        plan.add(lost, "flag.readiness_lost", None, {"ready_at": ready.isoformat()}, {})
        again = {"ready_at": (lost + timedelta(hours=20)).isoformat()}
        plan.add(lost + timedelta(hours=20), "flag.ready", None, {"ready_at": None}, again)


def _filler(plan: FlagPlan, rng: random.Random, count: int) -> Iterator[tuple[Any, ...]]:
    """Everyday events around the flag: exclusion and flag edits, cohort imports."""
    span = max((NOW - plan.created).total_seconds(), 1.0)
    for _ in range(count):
        at = plan.created + timedelta(seconds=int(rng.uniform(0, span)))
        roll = rng.random()
        if roll < 0.25:
            yield at, "flag.exclusions_set", "production", {"count": 3}, {"count": 4}
        elif roll < 0.4:
            yield at, "flag.updated", None, {"name": "old"}, {"name": "new"}
        else:
            yield at, "cohort.members_added", None, None, {"count": 250, "added": ["u1"]}


def build_events(plans: list[FlagPlan], total: int, rng: random.Random) -> list[tuple[Any, ...]]:
    """Every event, in time order, with the flag it is about (None for cohort events)."""
    rows = [(e[0], plan.key, *e[1:]) for plan in plans for e in plan.events]
    per_flag = max((total - len(rows)) // len(plans), 0)
    for plan in plans:
        for at, action, env, before, after in _filler(plan, rng, per_flag):
            key = None if action.startswith("cohort.") else plan.key
            rows.append((at, key, action, env, before, after))
    rows.sort(key=lambda row: row[0])
    return rows


def chained(rows: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """Audit rows with seq, prev_hash and hash exactly as ``audit.record`` computes them."""
    prev = audit_chain.GENESIS_HASH
    for seq, (at, key, action, env, before, after) in enumerate(rows, start=1):
        actor = ("scheduler", "system") if action == "flag.stage_changed" and seq % 7 == 0 else (
            ("maria", "marketing") if action.startswith("readiness") else ("dana", "engineer")
        )  # fmt: skip
        entity = ("cohort", "beta-testers") if key is None else ("flag", key)
        content = {
            "seq": seq, "occurred_at": at.isoformat(), "actor": actor[0], "actor_role": actor[1],
            "action": action, "entity_type": entity[0], "entity_key": entity[1], "flag_key": key,
            "environment": env, "before": before, "after": after, "request_id": f"bench-{seq}",
        }  # fmt: skip
        digest = audit_chain.event_hash(prev, content)
        yield (*content.values(), prev, digest)
        prev = digest


def reset_database(url: str) -> None:
    """Create the bench database if needed and migrate an empty schema."""
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    migrate.upgrade(_sqlalchemy_url(url))


def _sqlalchemy_url(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def load(url: str, flags: int, total: int, streams: int) -> dict[str, float]:
    """Generate and COPY the data set; return how long each part took."""
    rng, timings = random.Random(20261122), {}
    started = time.perf_counter()
    key_results = max(flags // 30, 3)
    plans = [plan_flag(n, rng, key_results) for n in range(flags)]
    rows = build_events(plans, total, rng)
    timings["generate_s"] = time.perf_counter() - started
    with psycopg.connect(url) as conn:
        _copy_definitions(conn, plans, key_results, streams)
        started = time.perf_counter()
        with conn.cursor().copy(
            f"COPY audit_events ({', '.join(AUDIT_COLUMNS)}) FROM STDIN"
        ) as copy:
            for row in chained(rows):
                copy.write_row([*row[:9], json.dumps(row[9]), json.dumps(row[10]), *row[11:]])
        timings["chain_and_copy_s"] = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    timings["events"] = len(rows)
    return timings


SEED_SQL = (
    "INSERT INTO value_streams (id, key, name, description, created_at, version) "
    "SELECT n, 'stream-' || n, 'Stream ' || n, '', now(), 1 FROM generate_series(1, %(s)s) n",
    "INSERT INTO environments (id, key, name, gated, created_at, version) VALUES "
    "(1, 'development', 'Development', false, now(), 1), (2, 'staging', 'Staging', false, now(), "
    "1), (3, 'production', 'Production', true, now(), 1)",
    "INSERT INTO objectives (id, title, description, period, owner, value_stream_id, created_at, "
    "version) SELECT n, 'Objective ' || n, '', '2026-Q4', 'team', 1 + (n - 1) %% %(s)s, now(), 1 "
    "FROM generate_series(1, %(o)s) n",
    "INSERT INTO key_results (id, objective_id, title, metric, baseline, target, current, unit, "
    "created_at, version) SELECT n, 1 + (n - 1) %% %(o)s, 'KR ' || n, 'm', 0, 10, 5, '%%', "
    "now(), 1 FROM generate_series(1, %(k)s) n",
    # one measured key result per objective (its first), over the objective's stream
    "UPDATE key_results k SET baseline = 30, target = 10, measure = json_build_object("
    "'metric', (ARRAY['flow_time_p50', 'flow_time_p85', 'flow_load', "
    "'wait_for_readiness_p50'])[1 + k.id %% 4], 'environment', 'production', "
    "'value_stream', 'stream-' || o.value_stream_id, 'window_days', 28) "
    "FROM objectives o WHERE o.id = k.objective_id AND k.id <= %(o)s",
    "INSERT INTO readiness_items (flag_id, item_key, label, required, done, note, position) "
    "SELECT f.id, i.key, i.key, true, f.ready_at IS NOT NULL, '', i.position FROM flags f, "
    "(VALUES ('docs', 0), ('announcement', 1), ('support_enablement', 2), "
    "('sales_briefing', 3)) AS i (key, position)",
)


def _copy_definitions(
    conn: psycopg.Connection[Any], plans: list[FlagPlan], krs: int, streams: int
) -> None:
    sizes = {"o": max(krs // 3, 1), "k": krs, "s": streams}
    for statement in SEED_SQL[:5]:
        conn.execute(statement, sizes)
    flags = list(enumerate(plans, start=1))
    columns = "id, key, name, description, flow_item, key_result_id, salt, created_at, ready_at"
    values = boolean_set().as_fields()
    variations = (values["value_type"], json.dumps(values["variations"]), values["on_variation"])
    _copy(conn, f"flags ({columns}, version, value_type, variations, on_variation)", (
        (n, p.key, p.key, "", p.flow_item, p.key_result_id, "s", p.created, p.ready_at, 1,
         *variations)
        for n, p in flags
    ))  # fmt: skip
    conn.execute(SEED_SQL[5])
    columns = "flag_id, environment_id, stage, rollout_basis_points, killed, updated_at, version"
    _copy(conn, f"flag_states ({columns})", (
        (n, env_id, *_state(p, env), False, NOW, 1)
        for n, p in flags for env, env_id in ENVIRONMENTS.items()
    ))  # fmt: skip
    counts = {
        "value_streams": streams, "environments": 3, "objectives": sizes["o"],
        "key_results": krs, "flags": len(plans),
    }  # fmt: skip
    for table, count in counts.items():
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {count})")


def _state(plan: FlagPlan, env: str) -> tuple[str, int]:
    stage, percent = plan.stages.get(env, ("off", 0))
    return stage, percent * 100 if stage == "general" else 0


def _copy(conn: psycopg.Connection[Any], target: str, rows: Iterator[tuple[Any, ...]]) -> None:
    with conn.cursor().copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


CPU_MS: dict[str, list[float]] = {}
"""Per path kind: milliseconds of this process's CPU per request (the Python side; the
database's own time is in the EXPLAIN plans). On a shared machine the wall clock says
how busy the machine was as much as how fast the code is."""


def timed(get: Any, path: str, repeat: int) -> list[float]:
    """Milliseconds per request, after one warm-up (CPU time noted in ``CPU_MS``)."""
    get(path)
    times = []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.thread_time()
        get(path)
        times.append((time.perf_counter() - started) * 1000)
        CPU_MS.setdefault(path.split("?")[0].rstrip("0123456789"), []).append(
            (time.thread_time() - cpu) * 1000
        )
    return times


def explain(url: str, statements: list[tuple[str, Any]]) -> list[str]:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of each statement, as text."""
    engine = create_engine(_sqlalchemy_url(url))
    plans = []
    with engine.connect() as conn:
        for statement, params in statements:
            raw = conn.connection.driver_connection
            assert raw is not None
            rows = raw.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).fetchall()
            plans.append(statement.strip() + "\n\n" + "\n".join(r[0] for r in rows))
    engine.dispose()
    return plans


def measure(url: str, repeat: int, flags: int) -> dict[str, Any]:
    """Time the flow report and audit-by-flag queries; capture their SQL plans."""
    app = create_app({"database_url": _sqlalchemy_url(url), "redis_url": None})
    state = app.extensions["flagsvc"]
    with state.db.write() as session:
        change = Change(SYSTEM, NOW, "bench")
        environments.ensure_default_environments(session, change)
        name = f"bench-{uuid.uuid4().hex[:8]}"  # runs with --no-load meet earlier ones
        token = credentials.create_token(session, change, name, Role.VIEWER)[1]
    get = _getter(app.test_client(), {"Authorization": f"Bearer {token}"})
    rng = random.Random(7)
    audits = [f"/api/v1/audit?flag=flag-{rng.randrange(flags):05d}" for _ in range(repeat * 4)]
    result: dict[str, Any] = {
        "flow": timed(get, "/api/v1/flow", repeat),
        "flow_objective": timed(get, "/api/v1/flow?objective=3", repeat),
        "flow_csv": timed(get, "/api/v1/flow?format=csv", max(repeat // 5, 3)),
        "value_streams": timed(get, "/api/v1/flow/value-streams", repeat),
        "measured_key_result": [
            t for n in range(repeat) for t in timed(get, f"/api/v1/key-results/{1 + n % 50}", 1)
        ],
        "objectives_page": timed(get, "/api/v1/objectives?limit=20", max(repeat // 4, 5)),
        "audit_by_flag": [t for path in audits for t in timed(get, path, 1)],
    }
    result["plans_flow"] = explain(url, _statements(state.db.write_engine, get, "/api/v1/flow"))
    result["plans_streams"] = explain(
        url, _statements(state.db.write_engine, get, "/api/v1/flow/value-streams")
    )
    result["plans_audit"] = explain(url, _statements(state.db.write_engine, get, audits[0]))
    state.db.dispose()
    return result


def _statements(engine: Any, get: Any, path: str) -> list[tuple[str, Any]]:
    """The SELECTs one request issues, but the first (the token lookup)."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    get(path)
    event.remove(engine, "before_cursor_execute", record)
    return seen[1:]


def _getter(client: Any, headers: dict[str, str]) -> Any:
    def get(path: str) -> Any:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:300])
        return response

    return get


def report(figures: dict[str, Any], load_times: dict[str, float], args: argparse.Namespace) -> str:
    """The figures as plain lines (printed, and written to the docs with --write-docs)."""
    lines = [
        f"flags: {args.flags}, value streams: {args.streams}, "
        f"audit events: {int(load_times['events'])}",
        f"generate: {load_times['generate_s']:.1f} s, hash chain + COPY: "
        f"{load_times['chain_and_copy_s']:.1f} s",
    ]
    for name in (
        "flow", "flow_objective", "flow_csv", "value_streams", "measured_key_result",
        "objectives_page", "audit_by_flag",
    ):  # fmt: skip
        values = figures[name]
        lines.append(
            f"{name}: n={len(values)} p50={statistics.median(values):.1f} ms "
            f"p95={statistics.quantiles(values, n=20, method='inclusive')[18]:.1f} ms "
            f"max={max(values):.1f} ms"
        )
    lines.append("Python CPU per request (median), by path:")
    lines.extend(f"  {path}: {statistics.median(ms):.1f} ms" for path, ms in CPU_MS.items())
    lines.append(f"load average at the end: {' '.join(f'{n:.1f}' for n in os.getloadavg())}")
    return "\n".join(lines)


def write_docs(summary: str, figures: dict[str, Any], command: str) -> None:
    """Replace what follows the marker in docs/flow-performance.md with this run."""
    titles = (
        ("plans_flow", "GET /api/v1/flow"),
        ("plans_streams", "GET /api/v1/flow/value-streams"),
        ("plans_audit", "GET /api/v1/audit?flag=…"),
    )
    plans = "\n".join(
        f"### {title}\n\n```\n{plan}\n```\n" for key, title in titles for plan in figures[key]
    )
    body = DOCS.read_text().split(MARKER)[0] if DOCS.exists() else "# Flow performance\n\n"
    run = f"Last run: `{command}`, {NOW.date().isoformat()}\n\n```\n{summary}\n```\n"
    DOCS.write_text(f"{body}{MARKER}\n\n{run}\n## EXPLAIN ANALYZE\n\n{plans}")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/bench_flow")
    parser.add_argument("--flags", type=int, default=5_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--verify", action="store_true", help="also verify the hash chain")
    parser.add_argument(
        "--no-load", action="store_true", help="measure the database a previous run loaded"
    )
    return parser.parse_args()


def main() -> None:
    args = arguments()
    if args.no_load:
        load_times = {"events": float(args.events), "generate_s": 0.0, "chain_and_copy_s": 0.0}
    else:
        reset_database(args.database_url)
        load_times = load(args.database_url, args.flags, args.events, args.streams)
    figures = measure(args.database_url, args.repeat, args.flags)
    summary = report(figures, load_times, args)
    print(summary)
    if args.verify:
        database = Database(_sqlalchemy_url(args.database_url))
        with database.read() as session:
            print("audit chain:", audit.verify(session))
    if args.write_docs:
        write_docs(summary, figures, " ".join(["bench/flow_report.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
