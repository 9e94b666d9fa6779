"""Audit events as people read them: one sentence each, and the fields that changed.

``describe(event)`` turns ``flag.stage_changed`` with its before/after JSON into
"Stage in production: early access → general rollout at 25 %" and a list of field
changes (``stage: early access → general 25 %``). Every action of ``Action`` has its
sentence; an action added later, or a field not named here, still reads as its words
and a before → after list, never as raw JSON. The raw event stays one click away on the
audit page, for auditors.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flagsvc.domain.actions import Action
from flagsvc.services import audit
from flagsvc.services.records import AuditEvent
from flagsvc.ui.forms import bounded
from flagsvc.web.context import db

STAGE_WORDS = {
    "off": "off",
    "early_access": "early access",
    "general": "general rollout",
    "released": "released",
    "retired": "retired",
}
FIELD_WORDS = {
    "flow_item": "flow item",
    "key_result_id": "key result",
    "opt_in": "opt-in",
    "rollout_percent": "ramp",
    "launch_at": "launch",
}
CONFLICT_EVENTS = 50  # events read to say what changed meanwhile (the last three are named)
SKIPPED_FIELDS = frozenset({"direction", "id", "prefix", "objective_id", "sample", "source"})
Labels = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of an event: its name in words and its value before and after."""

    field: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class Entry:
    """An audit event in words."""

    sentence: str
    changes: Sequence[FieldChange]


def describe(event: AuditEvent, labels: Labels | None = None) -> Entry:
    """The event as a sentence and its field changes; ``labels`` names readiness items."""
    before = event.before if isinstance(event.before, Mapping) else {}
    after = event.after if isinstance(event.after, Mapping) else {}
    writer = _SENTENCES.get(event.action)
    sentence = (
        writer(event, before, after, labels or _item_words) if writer else _words(event.action)
    )
    return Entry(sentence, field_changes(before, after))


def changed_since(
    seen: str | None,
    *,
    flag_key: str | None = None,
    environment: str | None = None,
    entity: tuple[str, str] | None = None,
) -> str:
    """A refused save (412) in words: nothing was saved, and what others changed since
    the page was shown (its forms carry the audit head they saw, ``seen``).

    ``environment`` keeps the events of one environment (``""``: the flag's own, outside
    any environment); ``entity`` those about one ``(entity_type, entity_key)``.
    """
    after = bounded(seen, 2**63 - 1)  # forged: ignored
    said = []
    if after is not None:
        with db().read() as session:
            query = audit.AuditQuery(flag_key=flag_key, after_seq=after)
            events = audit.query(session, query, CONFLICT_EVENTS)
            for event in events:
                if environment is not None and (event.environment or "") != environment:
                    continue
                if entity is not None and (event.entity_type, event.entity_key) != entity:
                    continue
                said.append(f"{event.actor}, {event.occurred_at:%H:%M} UTC: "
                            f"{describe(event).sentence}")  # fmt: skip
    since = f" ({'; '.join(said[-3:])})" if said else ""
    return (
        f"Not saved: someone changed this since you opened the page{since}. What you chose is "
        "kept below: compare it with the latest and save again, or reload to start over."
    )


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[FieldChange]:
    """The top-level fields whose values differ, in words (``None`` shows as —)."""
    changes = []
    for name in dict.fromkeys([*before, *after]):
        if name in SKIPPED_FIELDS or before.get(name) == after.get(name):
            continue
        old, new = before.get(name), after.get(name)
        changes.append(FieldChange(FIELD_WORDS.get(name, name.replace("_", " ")),
                                   value_words(name, old), value_words(name, new)))  # fmt: skip
    return changes


def value_words(name: str, value: Any) -> str:
    """One value as a person reads it."""
    if value is None or value == []:
        return "—"
    if name == "stage":
        return STAGE_WORDS.get(str(value), str(value))
    if name == "rollout_percent":
        return f"{float(value):g} %"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and _is_time(value):
        return _when(value)
    if isinstance(value, list):
        return ", ".join(_list_item(item) for item in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {value_words(k, v)}" for k, v in value.items())
    return str(value)


def position_words(state: Mapping[str, Any]) -> str:
    """``{"stage": "general", "rollout_percent": 25}`` → ``general rollout at 25 %``."""
    stage = str(state.get("stage", ""))
    if stage == "general" and state.get("rollout_percent") is not None:
        return f"general rollout at {float(state['rollout_percent']):g} %"
    return STAGE_WORDS.get(stage, stage.replace("_", " "))


def _list_item(item: Any) -> str:
    if isinstance(item, Mapping):  # a rule, a checklist item
        if "attribute" in item:
            values = ", ".join(str(v) for v in item.get("values", []))
            return f"{item['attribute']} {str(item.get('op', '')).replace('_', ' ')} {values}"
        return str(item.get("label") or item.get("key") or item)
    return str(item)


def _is_time(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return "T" in value


def _when(value: str) -> str:
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")


def _words(action: str) -> str:
    entity, _, what = action.partition(".")
    return f"{entity.replace('_', ' ').capitalize()} {what.replace('_', ' ')}"


def _item_words(key: str) -> str:
    return key.replace("_", " ")


def _where(event: AuditEvent) -> str:
    return f" in {event.environment}" if event.environment else ""


# --- one sentence per action ------------------------------------------------------------

Sentence = Callable[[AuditEvent, Mapping[str, Any], Mapping[str, Any], Labels], str]


def _stage_changed(event: AuditEvent, before: Mapping[str, Any], after: Mapping[str, Any],
                   _labels: Labels) -> str:  # fmt: skip
    back = " (rollback)" if after.get("direction") == "rollback" else ""
    return f"Stage{_where(event)}: {position_words(before)} → {position_words(after)}{back}"


def _killed(event: AuditEvent, before: Mapping[str, Any], _after: Mapping[str, Any],
            _labels: Labels) -> str:  # fmt: skip
    return f"Kill switch on{_where(event)}: off for everyone (was {position_words(before)})"


def _resumed(event: AuditEvent, _before: Mapping[str, Any], after: Mapping[str, Any],
             _labels: Labels) -> str:  # fmt: skip
    return f"Kill switch off{_where(event)}: {position_words(after)} again"


def _created(event: AuditEvent, _before: Mapping[str, Any], after: Mapping[str, Any],
             _labels: Labels) -> str:  # fmt: skip
    entity = event.entity_type.replace("_", " ")
    name = after.get("name") or after.get("title") or event.entity_key
    if event.action == Action.SDK_KEY_CREATED:
        return f"Created SDK key {after.get('prefix', '')}…{_where(event)}"
    extra = _created_extra(event.action, after)
    return f"Created {entity} {name}{extra}"


def _created_extra(action: str, after: Mapping[str, Any]) -> str:
    if action == Action.TOKEN_CREATED:
        return f" ({after.get('role')})"
    if action == Action.ENVIRONMENT_CREATED:
        return " (gated)" if after.get("gated") else " (not gated)"
    if action == Action.FLAG_CREATED:
        return f" ({after.get('flow_item')})"
    if action == Action.OBJECTIVE_CREATED:
        return f" ({after.get('period')}, {after.get('owner')})"
    if action == Action.KEY_RESULT_CREATED:
        unit = f" {after['unit']}" if after.get("unit") else ""
        measure = after.get("measure")
        measured = f", measured by {measure['metric']}" if isinstance(measure, dict) else ""
        return f" ({value_words('', after.get('baseline'))} → " \
               f"{value_words('', after.get('target'))}{unit}{measured})"  # fmt: skip
    return ""


def _revoked(event: AuditEvent, before: Mapping[str, Any], _after: Mapping[str, Any],
             _labels: Labels) -> str:  # fmt: skip
    if event.action == Action.SDK_KEY_REVOKED:
        return f"Revoked SDK key {before.get('prefix', '')}…{_where(event)}"
    return f"Revoked token {before.get('name', event.entity_key)}"


def _deleted(event: AuditEvent, before: Mapping[str, Any], _after: Mapping[str, Any],
             _labels: Labels) -> str:  # fmt: skip
    name = before.get("name") or before.get("title") or event.entity_key
    count = before.get("members")
    members = f" ({count} explicit member{'' if count == 1 else 's'})" if count is not None else ""
    return f"Deleted {event.entity_type.replace('_', ' ')} {name}{members}"


def _updated(event: AuditEvent, before: Mapping[str, Any], after: Mapping[str, Any],
             _labels: Labels) -> str:  # fmt: skip
    names = [change.field for change in field_changes(before, after)]
    entity = event.entity_type.replace("_", " ")
    return f"Changed the {entity}'s {_and(names) or 'fields'}"


def _redelivered(event: AuditEvent, before: Mapping[str, Any], _after: Mapping[str, Any],
                 _labels: Labels) -> str:  # fmt: skip
    status = before.get("status", "")
    return f"Sent delivery {before.get('event_id', '')} of webhook {event.entity_key} again " \
           f"(it was {status})"  # fmt: skip


def _cohorts_set(event: AuditEvent, before: Mapping[str, Any], after: Mapping[str, Any],
                 _labels: Labels) -> str:  # fmt: skip
    old, new = value_words("", before.get("cohorts")), value_words("", after.get("cohorts"))
    own = after.get("variations") or {}
    served = ""
    if own != (before.get("variations") or {}):
        served = "; " + (", ".join(f"{c} serves {v}" for c, v in own.items()) or "all serve on")
    return f"Early-access cohorts{_where(event)}: {old} → {new}{served}"


def _variations_set(_event: AuditEvent, before: Mapping[str, Any], after: Mapping[str, Any],
                    _labels: Labels) -> str:  # fmt: skip
    """``Values changed: on v1 → v2; added v3; changed the value of v1``."""
    old = {v.get("key"): v.get("value") for v in before.get("variations", [])}
    new = {v.get("key"): v.get("value") for v in after.get("variations", [])}
    parts = []
    for pointer, word in (("on_variation", "on"), ("off_variation", "off")):
        if before.get(pointer) != after.get(pointer):
            was, now = (before.get(pointer) or "the default", after.get(pointer) or "the default")
            parts.append(f"{word} {was} → {now}")
    added = [str(k) for k in new if k not in old]
    removed = [str(k) for k in old if k not in new]
    changed = [str(k) for k in new if k in old and new[k] != old[k]]
    parts += [f"added {_and(added)}"] if added else []
    parts += [f"removed {_and(removed)}"] if removed else []
    parts += [f"changed the value of {_and(changed)}"] if changed else []
    return f"Values changed: {'; '.join(parts) or 'descriptions'}"


def _exclusions_set(event: AuditEvent, _before: Mapping[str, Any], after: Mapping[str, Any],
                    _labels: Labels) -> str:  # fmt: skip
    count = after.get("count", 0)
    return f"Exclusions{_where(event)}: now {count} user{'' if count == 1 else 's'}"


def _members(event: AuditEvent, _before: Mapping[str, Any], after: Mapping[str, Any],
             _labels: Labels) -> str:  # fmt: skip
    count = after.get("count", 0)
    sample = list(after.get("sample", []))[:3]
    shown = f" ({', '.join(sample)}{', …' if count > len(sample) else ''})" if sample else ""
    verb = "Added" if event.action == Action.COHORT_MEMBERS_ADDED else "Removed"
    where = "to" if verb == "Added" else "from"
    return f"{verb} {count:,} member{'' if count == 1 else 's'} {where} {event.entity_key}{shown}"


def _enrolment(event: AuditEvent, before: Mapping[str, Any], after: Mapping[str, Any],
               _labels: Labels) -> str:  # fmt: skip
    user = after.get("user_key") or before.get("user_key") or "a user"
    joined = event.action == Action.COHORT_MEMBER_ENROLLED
    return f"{user} {'joined' if joined else 'left'} {event.entity_key} (opt-in)"


def _item_marked(_event: AuditEvent, _before: Mapping[str, Any], after: Mapping[str, Any],
                 labels: Labels) -> str:  # fmt: skip
    label = labels(str(after.get("item", "")))
    state = "done" if after.get("done") else "not done"
    note = f": “{after['note']}”" if after.get("note") else ""
    return f"Marked “{label}” {state}{note}"


def _checklist_set(_event: AuditEvent, before: Mapping[str, Any], after: Mapping[str, Any],
                   _labels: Labels) -> str:  # fmt: skip
    old = {i.get("key"): i.get("label") for i in before.get("items", [])}
    new = {i.get("key"): i.get("label") for i in after.get("items", [])}
    added = [new[k] for k in new if k not in old]
    removed = [old[k] for k in old if k not in new]
    parts = ([f"added {_and(added)}"] if added else []) + (
        [f"removed {_and(removed)}"] if removed else []
    )
    return f"Readiness checklist changed: {'; '.join(parts) or 'labels or required items'}"


def _ready(_event: AuditEvent, _before: Mapping[str, Any], after: Mapping[str, Any],
           _labels: Labels) -> str:  # fmt: skip
    waived = len(after.get("waived", []))
    if waived:  # the readiness.waived event just before names them (their labels are gone)
        return f"Ready to launch: {waived} required item{'s' * (waived > 1)} waived, not done"
    return "Every required readiness item done: ready to launch"


def _waived(_event: AuditEvent, _before: Mapping[str, Any], after: Mapping[str, Any],
            _labels: Labels) -> str:  # fmt: skip
    items = [str(item.get("label") or item.get("key")) for item in after.get("items", [])]
    return f"Readiness waived: {_and(items)} taken off the checklist or made optional, not done"


def _readiness_lost(_event: AuditEvent, _before: Mapping[str, Any], _after: Mapping[str, Any],
                    _labels: Labels) -> str:  # fmt: skip
    return "No longer ready: a required readiness item is open again"


def _launch_scheduled(event: AuditEvent, _before: Mapping[str, Any], after: Mapping[str, Any],
                      _labels: Labels) -> str:  # fmt: skip
    ramp = after.get("rollout_percent")
    at = f" at {float(ramp):g} %" if ramp is not None else ""
    return f"Launch scheduled{_where(event)}: {value_words('', after.get('launch_at'))}{at}"


def _launch_cancelled(event: AuditEvent, _before: Mapping[str, Any], _after: Mapping[str, Any],
                      _labels: Labels) -> str:  # fmt: skip
    return f"Scheduled launch cancelled{_where(event)}"


def _launch_ran(event: AuditEvent, _before: Mapping[str, Any], after: Mapping[str, Any],
                _labels: Labels) -> str:  # fmt: skip
    ramp = after.get("rollout_percent")
    at = f"general rollout at {float(ramp):g} %" if ramp is not None else "general rollout"
    return f"Scheduled launch ran{_where(event)}: {at}"


def _launch_skipped(event: AuditEvent, _before: Mapping[str, Any], after: Mapping[str, Any],
                    _labels: Labels) -> str:  # fmt: skip
    reason = after.get("reason")
    return f"Scheduled launch skipped{_where(event)}" + (f": {reason}" if reason else "")


def _and(names: Sequence[str]) -> str:
    names = list(names)
    return (
        ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + (names[-1] if names else "")
    )


_SENTENCES: dict[str, Sentence] = {
    Action.FLAG_CREATED: _created,
    Action.FLAG_UPDATED: _updated,
    Action.FLAG_STAGE_CHANGED: _stage_changed,
    Action.FLAG_KILLED: _killed,
    Action.FLAG_RESUMED: _resumed,
    Action.FLAG_COHORTS_SET: _cohorts_set,
    Action.FLAG_EXCLUSIONS_SET: _exclusions_set,
    Action.FLAG_VARIATIONS_SET: _variations_set,
    Action.FLAG_READY: _ready,
    Action.FLAG_READINESS_LOST: _readiness_lost,
    Action.FLAG_LAUNCH_SCHEDULED: _launch_scheduled,
    Action.FLAG_LAUNCH_CANCELLED: _launch_cancelled,
    Action.FLAG_LAUNCH_RAN: _launch_ran,
    Action.FLAG_LAUNCH_SKIPPED: _launch_skipped,
    Action.READINESS_CHECKLIST_SET: _checklist_set,
    Action.READINESS_ITEM_MARKED: _item_marked,
    Action.READINESS_WAIVED: _waived,
    Action.COHORT_CREATED: _created,
    Action.COHORT_UPDATED: _updated,
    Action.COHORT_DELETED: _deleted,
    Action.COHORT_MEMBERS_ADDED: _members,
    Action.COHORT_MEMBERS_REMOVED: _members,
    Action.COHORT_MEMBER_ENROLLED: _enrolment,
    Action.COHORT_MEMBER_LEFT: _enrolment,
    Action.OBJECTIVE_CREATED: _created,
    Action.OBJECTIVE_UPDATED: _updated,
    Action.OBJECTIVE_DELETED: _deleted,
    Action.KEY_RESULT_CREATED: _created,
    Action.KEY_RESULT_UPDATED: _updated,
    Action.KEY_RESULT_DELETED: _deleted,
    Action.VALUE_STREAM_CREATED: _created,
    Action.ENVIRONMENT_CREATED: _created,
    Action.TOKEN_CREATED: _created,
    Action.TOKEN_REVOKED: _revoked,
    Action.SDK_KEY_CREATED: _created,
    Action.SDK_KEY_REVOKED: _revoked,
    Action.WEBHOOK_CREATED: _created,
    Action.WEBHOOK_UPDATED: _updated,
    Action.WEBHOOK_DELETED: _deleted,
    Action.WEBHOOK_REDELIVERED: _redelivered,
}
