"""Every text length a schema allows is exactly what its column stores.

A schema that allows more than its column turns a long value into a 500 on PostgreSQL
(SQLite stores it anyway, so only one backend would show it); one that allows less
refuses values the database could hold. The test walks every marshmallow schema of the
service, every string field (and list item, dict key) with a ``Length`` maximum, and
compares it with the column it is stored in. A new schema field with a length limit
must be named below: in ``STORED_IN`` (its column) or ``NOT_STORED`` (why not).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import marshmallow as ma
import pytest
from marshmallow import validate
from sqlalchemy import String
from sqlalchemy.orm import InstrumentedAttribute

import flagsvc.api
import flagsvc.ui
import flagsvc.web.shapes
from flagsvc.storage import models

_FLAG = {"name": models.Flag.name, "description": models.Flag.description}
_OBJECTIVE = {
    "title": models.Objective.title,
    "description": models.Objective.description,
    "owner": models.Objective.owner,
}
_KEY_RESULT = {
    "title": models.KeyResult.title,
    "metric": models.KeyResult.metric,
    "unit": models.KeyResult.unit,
}
_COHORT = {"name": models.Cohort.name, "description": models.Cohort.description}
_WEBHOOK = {"name": models.Webhook.name, "url": models.Webhook.url, "secret": models.Webhook.secret}

STORED_IN: dict[str, InstrumentedAttribute[object]] = {
    **{f"FlagCreateSchema.{f}": c for f, c in _FLAG.items()},
    **{f"FlagPatchSchema.{f}": c for f, c in _FLAG.items()},
    **{f"ObjectiveCreateSchema.{f}": c for f, c in _OBJECTIVE.items()},
    **{f"ObjectivePatchSchema.{f}": c for f, c in _OBJECTIVE.items()},
    **{f"KeyResultCreateSchema.{f}": c for f, c in _KEY_RESULT.items()},
    **{f"KeyResultPatchSchema.{f}": c for f, c in _KEY_RESULT.items()},
    **{f"CohortCreateSchema.{f}": c for f, c in _COHORT.items()},
    **{f"CohortPatchSchema.{f}": c for f, c in _COHORT.items()},
    **{f"WebhookCreateSchema.{f}": c for f, c in _WEBHOOK.items()},
    **{f"WebhookPatchSchema.{f}": c for f, c in _WEBHOOK.items()},
    **{f"WebhookFieldsSchema.{f}": c for f, c in _WEBHOOK.items()},
    "MembersEditSchema.add[]": models.CohortMember.user_key,
    "MembersEditSchema.remove[]": models.CohortMember.user_key,
    "FlagExclusionsSchema.users[]": models.FlagExclusion.user_key,
    "EnvironmentCreateSchema.name": models.Environment.name,
    "ValueStreamCreateSchema.name": models.ValueStream.name,
    "ValueStreamCreateSchema.description": models.ValueStream.description,
    "TokenCreateSchema.name": models.ApiToken.name,
    "ReadinessItemInputSchema.label": models.ReadinessItem.label,
    "ReadinessMarkSchema.note": models.ReadinessItem.note,
    # filters and references compare with a stored value: longer can never match
    "AuditArgsSchema.flag": models.AuditEvent.flag_key,
    "AuditArgsSchema.actor": models.AuditEvent.actor,
    "AuditArgsSchema.action": models.AuditEvent.action,
    "EvaluationCountSchema.flag": models.Flag.key,
    "EvaluateArgsSchema.flags[]": models.Flag.key,
}
NOT_STORED = {
    "PageArgsSchema.cursor": "an opaque position, decoded to a number",
    "AuditArgsSchema.cursor": "an opaque position, decoded to a number",
    "FlagListArgsSchema.cursor": "an opaque position, decoded to a number",
    "ObjectiveListArgsSchema.cursor": "an opaque position, decoded to a number",
    "MemberPageArgsSchema.cursor": "an opaque position, decoded to a user key",
    "FlagListArgsSchema.q": "a search text, never stored",
    "SnapshotQuerySchema.base": "a snapshot's content hash the SDK holds, compared, never stored",
    "RuleSchema.attribute": "rules are stored as JSON (no column length)",
    "VariationSchema.description": "variations are stored as JSON (no column length)",
    "EvaluateArgsSchema.context{}": "evaluation attributes are never stored",
    "MembershipArgsSchema.context{}": "evaluation attributes are never stored",
}


def _schemas() -> list[type[ma.Schema]]:
    for package in (flagsvc.api, flagsvc.ui, flagsvc.web.shapes):
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
    found, todo = [], list(ma.Schema.__subclasses__())
    while todo:
        schema = todo.pop()
        todo.extend(schema.__subclasses__())
        if schema.__module__.startswith("flagsvc."):
            found.append(schema)
    return found


def _max_length(field: ma.fields.Field) -> int | None:
    """The ``Length`` maximum of a string field (a list's ``Length`` counts items: not ours)."""
    if not isinstance(field, ma.fields.String):
        return None
    limits = [v.max for v in field.validators if isinstance(v, validate.Length) and v.max]
    return min(limits) if limits else None


def _limited_strings(schema: type[ma.Schema]) -> Iterator[tuple[str, int]]:
    """``(Schema.field, max)`` for each length-limited string, list item and dict key."""
    for name, field in schema().fields.items():
        parts: list[tuple[str, ma.fields.Field | None]] = [(name, field)]
        if isinstance(field, ma.fields.List):
            parts.append((f"{name}[]", field.inner))
        if isinstance(field, ma.fields.Dict):
            parts.append((f"{name}{{}}", field.key_field))
        for path, part in parts:
            limit = _max_length(part) if part is not None else None
            if limit is not None:
                yield f"{schema.__name__}.{path}", limit


LIMITED = sorted({item for schema in _schemas() for item in _limited_strings(schema)})


def test_walk__finds_the_schemas_it_checks():
    names = {path for path, _ in LIMITED}
    assert "TokenCreateSchema.name" in names and "MembersEditSchema.add[]" in names
    assert len(names) >= 30


@pytest.mark.parametrize(("path", "limit"), LIMITED, ids=[path for path, _ in LIMITED])
def test_schema_length__equals_its_column(path: str, limit: int):
    if path in NOT_STORED:
        return
    assert path in STORED_IN, f"{path} (max {limit}): name its column in STORED_IN or NOT_STORED"
    column = STORED_IN[path].property.columns[0]
    if isinstance(column.type, String) and column.type.length is not None:
        assert limit == column.type.length, f"{path} allows {limit}, {column} stores {column.type}"
    # an unbounded column (Text): the schema's limit is the only one, and must exist


def test_lists__name_only_fields_that_exist():
    names = {path for path, _ in LIMITED}
    assert set(STORED_IN) <= names and set(NOT_STORED) <= names
