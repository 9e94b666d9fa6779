"""Scheduled launches, soonest first: what marketing planned, for finished work only."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from flagsvc.api.auth import requires
from flagsvc.domain.roles import Permission
from flagsvc.services import launches
from flagsvc.web.context import db
from flagsvc.web.schemas import StrictSchema
from flagsvc.web.schemas import key_field

blp = Blueprint(
    "launches", __name__, url_prefix="/api/v1", description="Scheduled launches, soonest first"
)


class LaunchArgsSchema(StrictSchema):
    environment = key_field(metadata={"description": "Only this environment's"})


class ScheduledLaunchSchema(ma.Schema):
    flag = ma.fields.String(attribute="flag.key")
    name = ma.fields.String(attribute="flag.name")
    environment = ma.fields.String(attribute="environment.key")
    stage = ma.fields.String()
    launch_at = ma.fields.DateTime()
    rollout_percent = ma.fields.Function(
        launches.launch_percent, metadata={"description": "The ramp general rollout starts at"}
    )


class ScheduledLaunchListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ScheduledLaunchSchema))


@blp.route("/launches")
class ScheduledLaunches(MethodView):
    @requires(Permission.READ)
    @blp.arguments(LaunchArgsSchema, location="query")
    @blp.response(200, ScheduledLaunchListSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """List scheduled launches (every environment, or one), soonest first"""
        with db().read() as session:
            return {"items": launches.scheduled(session, args.get("environment"))}
