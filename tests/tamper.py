"""What someone who owns the database does to the audit table: around its triggers.

The table refuses UPDATE and DELETE by trigger; its owner (or a superuser) can switch
the triggers off, so the tamper tests do exactly that before they rewrite history.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

SQLITE_TRIGGERS = ("audit_events_no_update", "audit_events_no_delete")


def around_triggers(target: Any) -> None:
    """Let this transaction of ``target`` (a Session or Connection) change audit events.

    PostgreSQL: ``session_replication_role = replica`` skips the triggers until commit.
    SQLite: drop them (each test has its own database file).
    """
    dialect = target.get_bind().dialect if hasattr(target, "get_bind") else target.dialect
    if dialect.name == "postgresql":
        target.execute(text("SET LOCAL session_replication_role = replica"))
        return
    for trigger in SQLITE_TRIGGERS:
        target.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
