"""The promise shapes both HTTP faces use: the API validates with them, the UI's forms too."""

from __future__ import annotations

import csv
import io
from xml.etree import ElementTree

import marshmallow as ma
from marshmallow import validate

from flagsvc.services import promise_board
from flagsvc.web.csv_cells import safe_row
from flagsvc.web.schemas import StrictSchema
from flagsvc.web.schemas import key_field

ATOM = "http://www.w3.org/2005/Atom"


CSV_FIELDS = (
    "flag", "name", "objective", "key_result", "stage", "rollout_percent",
    "early_access_since", "days_in_early_access", "safe_since", "early_adopters",
    "early_adopters_seen", "evaluations", "early_access_evaluations", "evaluations_24h",
    "early_access_evaluations_24h", "last_killed_at",
    "readiness_done", "readiness_total", "ready",
)  # fmt: skip


class PromiseArgsSchema(StrictSchema):
    environment = key_field(load_default="production")
    min_days = ma.fields.Integer(
        load_default=promise_board.DEFAULT_MIN_DAYS,
        validate=validate.Range(min=0, max=365),
        metadata={"description": "Days in early access (or beyond) before a feature is proven"},
    )
    quiet_days = ma.fields.Integer(
        load_default=promise_board.DEFAULT_QUIET_DAYS,
        validate=validate.Range(min=0, max=365),
        metadata={"description": "Days without a kill before a feature is safe"},
    )
    format = ma.fields.String(load_default="json", validate=validate.OneOf(["json", "csv", "atom"]))


class PromiseReadinessSchema(ma.Schema):
    ready = ma.fields.Boolean()
    done = ma.fields.Integer()
    total = ma.fields.Integer()
    missing = ma.fields.List(ma.fields.String())


class PromiseSchema(ma.Schema):
    flag = ma.fields.String()
    name = ma.fields.String()
    description = ma.fields.String()
    objective = ma.fields.String(metadata={"description": "What it is for"})
    key_result = ma.fields.String()
    stage = ma.fields.String(metadata={"description": "early_access | general"})
    rollout_percent = ma.fields.Float()
    early_access_since = ma.fields.DateTime()
    days_in_early_access = ma.fields.Float()
    safe_since = ma.fields.DateTime(metadata={"description": "When it became safe to promise"})
    early_adopters = ma.fields.Integer(
        metadata={"description": "Explicit cohort members it is on for (exclusions left out)"}
    )
    early_adopters_seen = ma.fields.Integer(
        metadata={
            "description": "Distinct users the SDKs saw it on for through early access "
            "(HyperLogLog of hashed keys: standard error 0.81 %)"
        }
    )
    evaluations = ma.fields.Integer(metadata={"description": "Reported by SDKs, all time"})
    early_access_evaluations = ma.fields.Integer(
        metadata={"description": "Of those, answered on through an early-access cohort"}
    )
    evaluations_24h = ma.fields.Integer()
    early_access_evaluations_24h = ma.fields.Integer(
        metadata={"description": "Of those, answered on through an early-access cohort"}
    )
    last_killed_at = ma.fields.DateTime(allow_none=True)
    readiness = ma.fields.Nested(PromiseReadinessSchema)


def csv_text(found: promise_board.Board) -> str:
    """The board as CSV (one row per feature; times ISO 8601)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for item in found.items:
        row = PromiseSchema().dump(item)
        readiness = row.pop("readiness")
        row.pop("description")
        row |= {
            "readiness_done": readiness["done"],
            "readiness_total": readiness["total"],
            "ready": readiness["ready"],
        }
        writer.writerow(safe_row(row))
    return buffer.getvalue()


def atom_text(found: promise_board.Board, feed_id: str) -> str:
    """The board as an Atom feed: one entry per feature, ``updated`` when it became safe."""
    ElementTree.register_namespace("", ATOM)
    feed = ElementTree.Element(f"{{{ATOM}}}feed")
    _child(feed, "id", f"{feed_id}:{found.environment}")
    _child(feed, "title", f"Safe to promise ({found.environment})")
    newest = max((item.safe_since for item in found.items), default=found.as_of)
    _child(feed, "updated", newest.isoformat())
    author = ElementTree.SubElement(feed, f"{{{ATOM}}}author")
    _child(author, "name", "flagsvc")
    for item in found.items:
        entry = ElementTree.SubElement(feed, f"{{{ATOM}}}entry")
        _child(entry, "id", f"urn:flagsvc:promise:{found.environment}:{item.flag}")
        _child(entry, "title", item.name)
        _child(entry, "updated", item.safe_since.isoformat())
        _child(entry, "summary", summary(item))
    body: str = ElementTree.tostring(feed, encoding="unicode", xml_declaration=True)
    return body


def summary(item: promise_board.Promise) -> str:
    """The evidence in one sentence (feed entries, notifications)."""
    readiness = item.readiness
    killed = item.last_killed_at
    kill = "no kill so far" if killed is None else f"last kill {killed.isoformat()}"
    return (
        f"{item.name} serves “{item.key_result}” ({item.objective}). "
        f"In early access for {item.days_in_early_access:.1f} days, on for "
        f"{item.early_adopters} early adopters ({item.early_adopters_seen} seen by the SDKs), "
        f"{item.evaluations} evaluations reported ({item.early_access_evaluations} through "
        "early access); "
        f"{kill}; "
        f"readiness {readiness['done']} of {readiness['total']}."
    )


def _child(parent: ElementTree.Element, name: str, text: str) -> None:
    ElementTree.SubElement(parent, f"{{{ATOM}}}{name}").text = text
