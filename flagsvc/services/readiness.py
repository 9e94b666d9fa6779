"""Launch readiness: the checklist marketing / customer success own, and ``ready_at``.

General rollout in a gated environment waits for it, and the flow metrics read the
``flag.ready`` / ``flag.readiness_lost`` events to measure the wait. Every change locks
the flag row first, so two people ticking the last two items cannot both miss that
the flag just became ready.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from flagsvc.domain.actions import Action
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.readiness import is_ready
from flagsvc.services import audit
from flagsvc.services import flags
from flagsvc.services import gate
from flagsvc.services.context import Change
from flagsvc.services.context import Precondition
from flagsvc.services.context import no_precondition
from flagsvc.storage.models import Flag
from flagsvc.storage.models import ReadinessItem

MAX_WAIVERS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class Waiver:
    """Items still missing that someone dropped from a checklist (or made optional)."""

    at: datetime
    by: str
    role: str
    items: list[dict[str, str]]


def readiness_etag(flag: Flag) -> dict[str, object]:
    """ETag data of a flag's checklist: everything the readiness representation shows.

    The checklist has no version column of its own, so its state is the version.
    """
    items = [
        [i.item_key, i.label, i.required, i.done, i.note, audit.iso(i.done_at), i.done_by]
        for i in flag.readiness_items
    ]
    return {
        "kind": "readiness",
        "id": flag.id,
        "items": items,
        "ready_at": audit.iso(flag.ready_at),
    }


def get_readiness(session: Session, flag_key: str) -> Flag:
    """The flag whose checklist (loaded with it) the caller wants.

    :raise NotFoundError: there is no such flag.
    """
    return flags.get_flag(session, flag_key)


def set_checklist(
    session: Session,
    change: Change,
    flag_key: str,
    items: Sequence[Mapping[str, Any]],
    precondition: Precondition = no_precondition,
) -> Flag:
    """Replace the checklist; items whose key stays keep their done state and note.

    Adding a required item to a ready flag makes it not ready again (audited). Dropping
    required items that are not done, or making them optional, **waives** them: that is
    recorded as what it is (``readiness.waived``: which items, and by whom), and the
    ``flag.ready`` event it may lead to names them too.
    """
    flag = flags.get_flag(session, flag_key, lock="update")
    precondition(readiness_etag(flag))
    before, missing_before = _definition(flag), _missing_with_labels(flag)
    _replace_items(flag, items)
    after = _definition(flag)
    if after != before:
        session.flush()
        subject = audit.Subject("readiness", flag.key, flag_key=flag.key)
        audit.record(
            session,
            change,
            Action.READINESS_CHECKLIST_SET,
            subject,
            {"items": before},
            {"items": after},
        )
        waived = _waive(session, change, flag, missing_before)
        _settle_ready(session, change, flag, waived)
    return flag


def waivers(session: Session, flag_key: str) -> list[Waiver]:
    """Each time items still missing were waived from the flag's checklist, newest first
    (the latest ``MAX_WAIVERS_SHOWN``; the audit keeps them all)."""
    query = audit.AuditQuery(
        flag_key=flag_key, action=Action.READINESS_WAIVED.value, newest_first=True
    )
    return [
        Waiver(event.occurred_at, event.actor, event.actor_role, (event.after or {})["items"])
        for event in audit.query(session, query, MAX_WAIVERS_SHOWN)
    ]


def mark_item(
    session: Session,
    change: Change,
    flag_key: str,
    item_key: str,
    fields: Mapping[str, Any],
    precondition: Precondition = no_precondition,
) -> Flag:
    """Mark one item done or undone (``fields``: ``done``, optional ``note``).

    Marking an item the way it already is writes nothing; ``done_at`` keeps the
    moment it was first done.

    :raise NotFoundError: the flag or the item does not exist.
    """
    flag = flags.get_flag(session, flag_key, lock="update")
    precondition(readiness_etag(flag))
    item = _item(flag, item_key)
    before = _mark(item)
    _apply_mark(item, fields, change)
    after = _mark(item)
    if after != before:
        session.flush()
        subject = audit.Subject("readiness_item", f"{flag.key}/{item.item_key}", flag_key=flag.key)
        audit.record(session, change, Action.READINESS_ITEM_MARKED, subject, before, after)
        _settle_ready(session, change, flag)
    return flag


def _item(flag: Flag, item_key: str) -> ReadinessItem:
    for item in flag.readiness_items:
        if item.item_key == item_key:
            return item
    raise NotFoundError(f"readiness item of flag {flag.key!r}", item_key)


def _mark(item: ReadinessItem) -> dict[str, Any]:
    return {"item": item.item_key, "done": item.done, "note": item.note}


def _apply_mark(item: ReadinessItem, fields: Mapping[str, Any], change: Change) -> None:
    """Set done / note; ``done_at`` and ``done_by`` say who finished it, and when."""
    if fields.get("note") is not None:
        item.note = fields["note"]
    if item.done != fields["done"]:
        item.done = fields["done"]
        item.done_at = change.at if item.done else None
        item.done_by = change.actor.name if item.done else None


def _definition(flag: Flag) -> list[dict[str, Any]]:
    return [
        {"key": i.item_key, "label": i.label, "required": i.required} for i in flag.readiness_items
    ]


def _replace_items(flag: Flag, items: Sequence[Mapping[str, Any]]) -> None:
    """Rebuild the list in the given order; dropped items are deleted (delete-orphan)."""
    existing = {item.item_key: item for item in flag.readiness_items}
    rebuilt = []
    for position, spec in enumerate(items):
        item = existing.get(spec["key"]) or ReadinessItem(
            item_key=spec["key"], done=False, note="", done_at=None, done_by=None
        )
        item.label, item.required, item.position = spec["label"], spec["required"], position
        rebuilt.append(item)
    flag.readiness_items = rebuilt


def _missing_with_labels(flag: Flag) -> dict[str, str]:
    """Required items not done, by key, with their labels (checklist order)."""
    return {i.item_key: i.label for i in flag.readiness_items if i.required and not i.done}


def _waive(
    session: Session, change: Change, flag: Flag, missing_before: Mapping[str, str]
) -> list[str]:
    """Audit the missing items a checklist change dropped or made optional; their keys."""
    still = _missing_with_labels(flag)
    waived = [key for key in missing_before if key not in still]
    if waived:
        subject = audit.Subject("readiness", flag.key, flag_key=flag.key)
        items = [{"key": key, "label": missing_before[key]} for key in waived]
        after = {"items": items, "still_missing": list(still)}
        before = {"missing": list(missing_before)}
        audit.record(session, change, Action.READINESS_WAIVED, subject, before, after)
    return waived


def _settle_ready(session: Session, change: Change, flag: Flag, waived: Sequence[str] = ()) -> None:
    """Keep ``ready_at`` in step with the checklist and audit each crossing (a flag made
    ready by waiving items says which: ``waived``)."""
    ready = is_ready(flags.checklist(flag))
    if ready == (flag.ready_at is not None):
        return
    if not ready:
        gate.refuse_readiness_loss(session, flag, flags.missing_readiness(flag))
    before = {"ready_at": audit.iso(flag.ready_at)}
    flag.ready_at = change.at if ready else None
    session.flush()
    after: dict[str, Any] = {"ready_at": audit.iso(flag.ready_at)}
    if not ready:
        after["missing"] = flags.missing_readiness(flag)
    if ready and waived:
        after["waived"] = list(waived)
    action = Action.FLAG_READY if ready else Action.FLAG_READINESS_LOST
    audit.record(session, change, action, flags.subject(flag), before, after)
