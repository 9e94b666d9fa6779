"""Admin API requests in process: SQL statements and CPU per request, this tree vs a baseline.

    .venv/bin/python bench/admin_requests.py [--baseline REF] [--rounds 5] [--repeats 40]
    .venv/bin/python bench/admin_requests.py --trace       # the statements of one mix, this tree

A fixed mix of admin requests through Flask's test client, each as an admin token:

- ``GET flag``: ``GET /api/v1/flags/<key>``
- ``GET state``: ``GET /api/v1/flags/<key>/environments/production``
- ``POST stage``: a stage move in staging, early access and back to off by turns
- ``PUT item``: a readiness item marked done and undone by turns (never the last one,
  so the flag never becomes ready: the same work every time)
- ``GET readiness``: ``GET /api/v1/flags/<key>/readiness``
- ``GET audit``: ``GET /api/v1/audit?limit=50`` (newest events first is not the
  default: the first 50 of the chain)
- ``UI flag page``: ``GET /ui/flags/<key>`` in a browser session signed in with the same
  token (every environment's state, the key result, history, timeline, reach...)

**Baseline, in the same run**: the same mix on the code of ``--baseline`` (default
``4238f0b``, main before the statement cuts), extracted with ``git archive`` (package
and migrations) into a temporary folder put first on ``PYTHONPATH``. Each round runs
the baseline and this tree once each, alternately, every run a fresh process and a fresh
database (SQLite in a temporary folder; PostgreSQL when ``TEST_DATABASE_URL`` is set, a
database ``<its name>_bench_admin`` dropped and created next to it), with the same
seed: default environments, one admin token, one flag. Both ran the same bench code.

Per request kind: **statements** (every ``cursor.execute`` SQLAlchemy makes, counted
with a ``before_cursor_execute`` listener; on SQLite that includes the ``BEGIN`` /
``BEGIN IMMEDIATE`` a unit of work emits, PostgreSQL's BEGIN is the driver's and not
counted), the same in every repeat; and **CPU** (``time.process_time`` around the
request: this process only, the PostgreSQL server's work is not in it), the median of
``--repeats`` requests per round, then the median over rounds. The ratio is
baseline / this tree (above 1: this tree does less).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BASELINE = "4238f0b"
FLAG = "bench-flag"
BASE = f"/api/v1/flags/{FLAG}"
KINDS = (
    "GET flag",
    "GET state",
    "POST stage",
    "PUT item",
    "GET readiness",
    "GET audit",
    "UI flag page",
)
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def requests_of(turn: int) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """The mix, turn ``turn`` (moves and marks alternate so each one changes something)."""
    stage = "early_access" if turn % 2 == 0 else "off"
    return [
        ("GET flag", "GET", BASE, None),
        ("GET state", "GET", f"{BASE}/environments/production", None),
        ("POST stage", "POST", f"{BASE}/environments/staging/stage", {"stage": stage}),
        ("PUT item", "PUT", f"{BASE}/readiness/docs", {"done": turn % 2 == 0}),
        ("GET readiness", "GET", f"{BASE}/readiness", None),
        ("GET audit", "GET", "/api/v1/audit?limit=50", None),
        ("UI flag page", "GET", f"/ui/flags/{FLAG}", None),
    ]


# --- one run: a fresh process on one version of the code -------------------------------


def run_once(url: str, repeats: int, trace: bool) -> dict[str, dict[str, float]]:
    """Seed ``url``, run the mix ``repeats`` times after a warm-up; figures per kind."""
    from sqlalchemy import Engine
    from sqlalchemy import event

    from flagsvc import create_app
    from flagsvc.storage import migrate

    migrate.upgrade(url)
    app = create_app({"database_url": url, "testing": True, "redis_url": None})
    send = _sender(app, _seed(app))
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        statements.append(sql)

    event.listen(Engine, "before_cursor_execute", count)
    cpu: dict[str, list[float]] = {kind: [] for kind in KINDS}
    counts: dict[str, list[int]] = {kind: [] for kind in KINDS}
    for turn in range(repeats + 2):  # two warm-up turns: compiled-statement caches
        for kind, method, path, body in requests_of(turn):
            statements.clear()
            started = time.process_time()
            status = send(method, path, body)
            elapsed = time.process_time() - started
            assert status == 200, (kind, status)
            if trace and turn == 2:
                _print_trace(kind, statements)
            if turn >= 2:
                cpu[kind].append(elapsed)
                counts[kind].append(len(statements))
    app.extensions["flagsvc"].broker.close()
    app.extensions["flagsvc"].db.dispose()
    return {
        kind: {"statements": statistics.mean(counts[kind]), "cpu": statistics.median(cpu[kind])}
        for kind in KINDS
    }


def _sender(app: Any, secret: str) -> Callable[[str, str, dict[str, Any] | None], int]:
    """Send a request as the admin: API paths with the bearer token, UI paths in a
    browser session signed in with it. Answers the status."""
    client, headers = app.test_client(), {"Authorization": f"Bearer {secret}"}
    browser = _signed_in(app, secret)

    def send(method: str, path: str, body: dict[str, Any] | None) -> int:
        if path.startswith("/ui/"):
            return int(browser.open(path, method=method).status_code)
        return int(client.open(path, method=method, json=body, headers=headers).status_code)

    return send


def _print_trace(kind: str, statements: list[str]) -> None:
    print(f"--- {kind}: {len(statements)} statements", file=sys.stderr)
    for sql in statements:
        print("   ", " ".join(sql.split()), file=sys.stderr)


def _seed(app: Any) -> str:
    """Default environments, an admin token and the flag (through the API): the secret."""
    from flagsvc.domain.roles import Role
    from flagsvc.services import credentials
    from flagsvc.services import environments
    from flagsvc.services.context import SYSTEM
    from flagsvc.services.context import Change

    state = app.extensions["flagsvc"]
    with state.db.write() as session:
        change = Change(SYSTEM, datetime.now(UTC), "bench")
        environments.ensure_default_environments(session, change)
        secret: str = credentials.create_token(session, change, "bench", Role.ADMIN)[1]
    client, headers = app.test_client(), {"Authorization": f"Bearer {secret}"}
    objective = client.post(
        "/api/v1/objectives",
        json={"title": "O", "period": "2026-Q4", "owner": "team"},
        headers=headers,
    ).json
    key_result = client.post(
        f"/api/v1/objectives/{objective['id']}/key-results",
        json={"title": "K", "metric": "m", "baseline": 0, "target": 1},
        headers=headers,
    ).json
    body = {"key": FLAG, "name": "F", "flow_item": "feature", "key_result_id": key_result["id"]}
    assert client.post("/api/v1/flags", json=body, headers=headers).status_code == 201
    return secret


def _signed_in(app: Any, secret: str) -> Any:
    """A test client with a UI session signed in with ``secret`` (as a browser would)."""
    browser = app.test_client()
    page = browser.get("/ui/sign-in").get_data(as_text=True)
    found = CSRF_FIELD.search(page)
    assert found is not None, "no CSRF token on the sign-in page"
    form = {"token": secret, "csrf_token": found.group(1)}
    assert browser.post("/ui/sign-in", data=form).status_code == 303
    return browser


# --- the driver: rounds of fresh processes, baseline and this tree alternately ---------


@contextmanager
def baseline_tree(ref: str) -> Iterator[Path]:
    """The package and migrations of ``ref``, in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="flagsvc-bench-baseline-") as folder:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "flagsvc", "migrations"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        yield Path(folder)


def database_urls(folder: Path) -> list[tuple[str, Callable[[str], str]]]:
    """(backend, fresh database URL for a run labelled ``name``) per backend measured;
    SQLite files go into ``folder``."""

    def fresh_sqlite(name: str) -> str:
        path = folder / f"{name}-{time.monotonic_ns()}.db"
        return f"sqlite:///{path}"

    backends: list[tuple[str, Callable[[str], str]]] = [("sqlite", fresh_sqlite)]
    if os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"):
        backends.append(("postgresql", _fresh_postgres))
    return backends


def _fresh_postgres(name: str) -> str:
    from sqlalchemy import create_engine
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    server = make_url(os.environ["TEST_DATABASE_URL"])
    database = f"{server.database}_bench_admin"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    del name
    return server.set(database=database).render_as_string(hide_password=False)


def run_in_process(tree: Path | None, url: str, repeats: int) -> dict[str, dict[str, float]]:
    """``run_once`` in a fresh interpreter on ``tree`` (None: this checkout)."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")])
        env["FLAGSVC_MIGRATIONS"] = str(tree / "migrations")
    command = [sys.executable, __file__, "--run-once", url, "--repeats", str(repeats)]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    if tree is not None:  # make sure the baseline ran the baseline's code
        assert done.stderr.strip().endswith(str(tree / "flagsvc")), done.stderr[-500:]
    figures: dict[str, dict[str, float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def report(backend: str, runs: dict[str, list[dict[str, dict[str, float]]]]) -> None:
    print(f"\n{backend}: per request (statements; CPU median of rounds, ms)")
    print(f"{'request':<15}{'baseline':>22}{'this tree':>22}{'ratio':>16}")
    totals = {"baseline": [0.0, 0.0], "this tree": [0.0, 0.0]}
    for kind in KINDS:
        cells = []
        for label in ("baseline", "this tree"):
            count = statistics.median(run[kind]["statements"] for run in runs[label])
            cpu = statistics.median(run[kind]["cpu"] for run in runs[label]) * 1000
            totals[label][0] += count
            totals[label][1] += cpu
            cells.append((count, cpu))
        (b_count, b_cpu), (a_count, a_cpu) = cells
        print(
            f"{kind:<15}{b_count:>8.1f} st {b_cpu:>8.3f} ms{a_count:>8.1f} st {a_cpu:>8.3f} ms"
            f"{b_count / a_count:>7.2f}x {b_cpu / a_cpu:>6.2f}x"
        )
    (b_count, b_cpu), (a_count, a_cpu) = totals["baseline"], totals["this tree"]
    n = len(KINDS)
    print(
        f"{'mean of mix':<15}{b_count / n:>8.1f} st {b_cpu / n:>8.3f} ms"
        f"{a_count / n:>8.1f} st {a_cpu / n:>8.3f} ms"
        f"{b_count / a_count:>7.2f}x {b_cpu / a_cpu:>6.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git ref of the baseline")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=40, help="mixes per run")
    parser.add_argument("--trace", action="store_true", help="print one mix's statements")
    parser.add_argument("--run-once", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_once:
        import flagsvc

        figures = run_once(args.run_once, args.repeats, trace=False)
        print(Path(flagsvc.__file__).parent, file=sys.stderr)
        print(json.dumps(figures))
        return
    with tempfile.TemporaryDirectory(prefix="flagsvc-bench-admin-") as folder:
        if args.trace:
            for backend, fresh in database_urls(Path(folder)):
                print(f"=== {backend}", file=sys.stderr)
                run_once(fresh("trace"), 1, trace=True)
            return
        compare(args, Path(folder))


def compare(args: argparse.Namespace, folder: Path) -> None:
    """Rounds of the baseline and this tree, alternately; the report per backend."""
    print(f"load average at start: {os.getloadavg()[0]:.2f}; baseline {args.baseline}")
    with baseline_tree(args.baseline) as tree:
        for backend, fresh in database_urls(folder):
            runs: dict[str, list[dict[str, dict[str, float]]]] = {"baseline": [], "this tree": []}
            for _ in range(args.rounds):
                runs["baseline"].append(run_in_process(tree, fresh("baseline"), args.repeats))
                runs["this tree"].append(run_in_process(None, fresh("tree"), args.repeats))
            report(backend, runs)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
