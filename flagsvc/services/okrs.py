"""Objectives and key results: what each flag serves, in place of a promised date."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Literal

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import selectinload

from flagsvc.domain import measures
from flagsvc.domain.actions import Action
from flagsvc.domain.errors import ConflictError
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import NotFoundError
from flagsvc.services import audit
from flagsvc.services import measured
from flagsvc.services.context import Change
from flagsvc.services.context import Precondition
from flagsvc.services.context import etag_data
from flagsvc.services.context import no_precondition
from flagsvc.storage.models import AuditEvent
from flagsvc.storage.models import Flag
from flagsvc.storage.models import KeyResult
from flagsvc.storage.models import Objective
from flagsvc.storage.models import ValueStream

OBJECTIVE_FIELDS = ("title", "description", "period", "owner", "value_stream_id")
KEY_RESULT_FIELDS = ("title", "metric", "baseline", "target", "current", "unit", "measure")
MEASURED_CURRENT = "is measured from the audit (see measure); remove the measure to type it in"


def objective_etag(objective: Objective) -> dict[str, object]:
    """ETag data of an objective."""
    return etag_data("objective", objective.id, objective.version)


def key_result_etag(key_result: KeyResult) -> dict[str, object]:
    """ETag data of a key result."""
    return etag_data("key_result", key_result.id, key_result.version)


def list_objectives(
    session: Session, *, period: str | None, after: int, limit: int
) -> Sequence[Objective]:
    """Objectives in creation order after position ``after`` (with their key results)."""
    stmt = select(Objective).options(selectinload(Objective.key_results))
    stmt = stmt.where(Objective.id > after).order_by(Objective.id).limit(limit)
    if period:
        stmt = stmt.where(Objective.period == period)
    return session.scalars(stmt).all()


def periods_in_use(session: Session) -> set[str]:
    """The planning periods objectives name (for the board's period picker)."""
    return set(session.scalars(select(Objective.period).distinct()).all())


def get_objective(
    session: Session, objective_id: int, *, lock: bool | Literal["share"] = False
) -> Objective:
    """The objective ``objective_id`` (locked for update, or shared with ``"share"``).

    :raise NotFoundError: there is none.
    """
    locking: bool | dict[str, bool] = {"read": True} if lock == "share" else bool(lock)
    objective = session.get(Objective, objective_id, with_for_update=locking)
    if objective is None:
        raise NotFoundError("objective", objective_id)
    return objective


def get_key_result(session: Session, key_result_id: int, *, lock: bool = False) -> KeyResult:
    """The key result ``key_result_id``.

    :raise NotFoundError: there is none.
    """
    key_result = session.get(KeyResult, key_result_id, with_for_update=lock)
    if key_result is None:
        raise NotFoundError("key result", key_result_id)
    return key_result


def create_objective(session: Session, change: Change, fields: Mapping[str, Any]) -> Objective:
    """Create an objective; its key results are added one by one."""
    fields = _with_stream(session, fields)
    values = {"description": "", **{f: fields[f] for f in OBJECTIVE_FIELDS if f in fields}}
    objective = Objective(**values, created_at=change.at, key_results=[])
    session.add(objective)
    session.flush()
    after = _summary(objective, OBJECTIVE_FIELDS)
    audit.record(session, change, Action.OBJECTIVE_CREATED, _subject(objective), None, after)
    return objective


def update_objective(
    session: Session,
    change: Change,
    objective_id: int,
    fields: Mapping[str, Any],
    precondition: Precondition = no_precondition,
) -> Objective:
    """Change an objective's fields (If-Match checked after the row is locked)."""
    objective = get_objective(session, objective_id, lock=True)
    precondition(objective_etag(objective))
    fields = _with_stream(session, fields)
    _update(session, change, objective, fields, Action.OBJECTIVE_UPDATED, _subject(objective))
    return objective


def create_key_result(
    session: Session, change: Change, objective_id: int, fields: Mapping[str, Any]
) -> KeyResult:
    """Add a key result to an objective; ``current`` starts at the baseline if not given.

    A measured key result (``measure`` given) takes no ``current``: it is computed from
    the audit on every read; its unit defaults to the metric's.

    :raise InvalidFieldError: a current value for a measured key result, or a measure
        that names what does not exist or aims the wrong way.
    """
    objective = get_objective(session, objective_id, lock="share")  # waits for a delete
    values = {f: fields[f] for f in KEY_RESULT_FIELDS if f in fields}
    _check_span(values["baseline"], values["target"])
    spec = _measure(values.get("measure"))
    if spec is not None:
        if "current" in values:
            raise InvalidFieldError("current", MEASURED_CURRENT)
        measured.check_spec(session, spec, values["baseline"], values["target"])
        values["measure"] = spec.as_json()
        values["unit"] = values.get("unit") or measures.UNITS[spec.metric]
    values.setdefault("current", values["baseline"])
    key_result = KeyResult(objective=objective, **values, created_at=change.at)
    session.add(key_result)
    session.flush()
    after = {"objective_id": objective.id, **_summary(key_result, KEY_RESULT_FIELDS)}
    audit.record(session, change, Action.KEY_RESULT_CREATED, _kr_subject(key_result), None, after)
    return key_result


def update_key_result(
    session: Session,
    change: Change,
    key_result_id: int,
    fields: Mapping[str, Any],
    precondition: Precondition = no_precondition,
) -> KeyResult:
    """Change a key result (typically its ``current`` value as progress is measured).

    ``measure`` set to None makes it typed in again (``current`` as last typed).

    :raise InvalidFieldError: a current value for a measured key result, or a measure
        (new, or kept with a new baseline or target) that cannot be measured.
    """
    key_result = get_key_result(session, key_result_id, lock=True)
    precondition(key_result_etag(key_result))
    fields = dict(fields)
    if "measure" in fields:
        new = _measure(fields["measure"])
        fields["measure"] = None if new is None else new.as_json()
    baseline = fields.get("baseline", key_result.baseline)
    target = fields.get("target", key_result.target)
    _check_span(baseline, target)
    spec = _measure(fields.get("measure", key_result.measure))
    if spec is not None:
        if "current" in fields:
            raise InvalidFieldError("current", MEASURED_CURRENT)
        measured.check_spec(session, spec, baseline, target)
    _update(session, change, key_result, fields, Action.KEY_RESULT_UPDATED, _kr_subject(key_result))
    return key_result


def delete_objective(
    session: Session,
    change: Change,
    objective_id: int,
    precondition: Precondition = no_precondition,
) -> None:
    """Delete an objective that has no key results left; audited with what it was.

    Locked ``FOR UPDATE``: a key result added at the same moment (which share-locks its
    objective) waits for this commit and then finds no objective.

    :raise ConflictError: it still has key results (delete or move them first).
    """
    objective = get_objective(session, objective_id, lock=True)
    precondition(objective_etag(objective))
    count = session.scalar(select(func.count()).where(KeyResult.objective_id == objective.id))
    if count:
        raise ConflictError(
            f"objective {objective_id} still has {count} key result(s); delete them first"
        )
    before = _summary(objective, OBJECTIVE_FIELDS)
    session.delete(objective)
    session.flush()
    audit.record(session, change, Action.OBJECTIVE_DELETED, _subject(objective), before, None)


def delete_key_result(
    session: Session,
    change: Change,
    key_result_id: int,
    precondition: Precondition = no_precondition,
) -> None:
    """Delete a key result no flag serves; audited with what it was.

    Locked ``FOR UPDATE``: a flag naming it at the same moment (which share-locks it)
    waits for this commit and then finds no key result (422), never a foreign-key error.

    :raise ConflictError: a flag (archived ones included) still serves it, named.
    """
    key_result = get_key_result(session, key_result_id, lock=True)
    precondition(key_result_etag(key_result))
    serving = session.scalars(
        select(Flag.key).where(Flag.key_result_id == key_result.id).order_by(Flag.key).limit(2)
    ).all()
    if serving:
        more = " and others" if len(serving) > 1 else ""
        raise ConflictError(
            f"key result {key_result_id} is served by flag {serving[0]!r}{more}; "
            "point those flags at another key result first"
        )
    before = {"objective_id": key_result.objective_id, **_summary(key_result, KEY_RESULT_FIELDS)}
    session.delete(key_result)
    session.flush()
    audit.record(session, change, Action.KEY_RESULT_DELETED, _kr_subject(key_result), before, None)


def _with_stream(session: Session, fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """``value_stream`` (a key, or None) as ``value_stream_id``.

    :raise InvalidFieldError: no value stream has that key.
    """
    if "value_stream" not in fields:
        return fields
    rest = {name: value for name, value in fields.items() if name != "value_stream"}
    key = fields["value_stream"]
    if key is None:
        return {**rest, "value_stream_id": None}
    found = session.scalar(select(ValueStream.id).where(ValueStream.key == key))
    if found is None:
        raise InvalidFieldError("value_stream", "no such value stream")
    return {**rest, "value_stream_id": found}


def _measure(value: Any) -> measures.MeasureSpec | None:
    """A measure as the API or the row holds it (a mapping), or None."""
    if value is None or isinstance(value, measures.MeasureSpec):
        return value
    return measures.MeasureSpec.from_json(value)


def _check_span(baseline: float, target: float) -> None:
    """:raise InvalidFieldError: on ``target``, a hair from ``baseline`` (see measures.MIN_SPAN)."""
    problem = measures.span_problem(baseline, target)
    if problem:
        raise InvalidFieldError("target", problem)


def _update(
    session: Session,
    change: Change,
    row: Objective | KeyResult,
    fields: Mapping[str, Any],
    action: Action,
    subject: audit.Subject,
) -> None:
    """Apply the fields that differ and audit them as ``action`` (nothing if none differ)."""
    before, after = _apply(row, fields)
    if after:
        session.flush()
        audit.record(session, change, action, subject, before, after)


def _apply(
    row: Objective | KeyResult, fields: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set the fields that differ; return their old and new values (empty: no change)."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in fields.items():
        if getattr(row, name) != value:
            before[name], after[name] = getattr(row, name), value
            setattr(row, name, value)
    return before, after


def _summary(row: Objective | KeyResult, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in names}


def _subject(objective: Objective) -> audit.Subject:
    return audit.Subject("objective", str(objective.id))


def _kr_subject(key_result: KeyResult) -> audit.Subject:
    return audit.Subject("key_result", str(key_result.id))


HISTORY_ACTIONS = (Action.KEY_RESULT_CREATED.value, Action.KEY_RESULT_UPDATED.value)


def key_result_history(
    session: Session, key_result_ids: Sequence[int], per_key_result: int
) -> dict[int, list[AuditEvent]]:
    """The latest ``per_key_result`` changes of each key result, newest first, in one query."""
    if not key_result_ids:
        return {}
    ranked = (
        select(
            AuditEvent.seq,
            func.row_number()
            .over(partition_by=AuditEvent.entity_key, order_by=AuditEvent.seq.desc())
            .label("n"),
        )
        .where(
            AuditEvent.action.in_(HISTORY_ACTIONS),
            AuditEvent.entity_type == "key_result",
            AuditEvent.entity_key.in_([str(i) for i in key_result_ids]),
        )
        .subquery()
    )
    stmt = (
        select(AuditEvent)
        .join(ranked, ranked.c.seq == AuditEvent.seq)
        .where(ranked.c.n <= per_key_result)
        .order_by(AuditEvent.seq.desc())
    )
    found: dict[int, list[AuditEvent]] = {}
    for event in session.scalars(stmt):
        found.setdefault(int(event.entity_key), []).append(event)
    return found
