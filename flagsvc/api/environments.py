"""Environments and their SDK keys."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from flagsvc.api.auth import requires
from flagsvc.api.context import change
from flagsvc.api.context import db
from flagsvc.api.schemas import StrictSchema
from flagsvc.api.schemas import key_field
from flagsvc.api.schemas import name_field
from flagsvc.domain.roles import Permission
from flagsvc.services import credentials
from flagsvc.services import environments

blp = Blueprint(
    "environments",
    __name__,
    url_prefix="/api/v1/environments",
    description="Environments and SDK keys",
)


class EnvironmentCreateSchema(StrictSchema):
    key = key_field(required=True)
    name = name_field(required=True)
    gated = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "General rollout here needs complete launch readiness"},
    )


class EnvironmentSchema(ma.Schema):
    key = ma.fields.String()
    name = ma.fields.String()
    gated = ma.fields.Boolean()
    version = ma.fields.Integer()
    created_at = ma.fields.DateTime()


class SdkKeyCreatedSchema(ma.Schema):
    id = ma.fields.Integer()
    environment = ma.fields.String()
    prefix = ma.fields.String()
    sdk_key = ma.fields.String(
        metadata={"description": "The SDK key itself. Shown only in this response."}
    )


@blp.route("")
class Environments(MethodView):
    @requires(Permission.READ)
    @blp.response(200, EnvironmentSchema(many=True))
    def get(self) -> Any:
        """List environments"""
        with db().read() as session:
            return environments.list_environments(session)

    @requires(Permission.MANAGE_ENVIRONMENTS)
    @blp.arguments(EnvironmentCreateSchema)
    @blp.response(201, EnvironmentSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Create an environment (every flag starts there dark)"""
        with db().write() as session:
            return environments.create_environment(
                session, change(), data["key"], data["name"], data["gated"]
            )


@blp.route("/<string:env>/sdk-keys")
class SdkKeys(MethodView):
    @requires(Permission.MANAGE_ENVIRONMENTS)
    @blp.response(201, SdkKeyCreatedSchema)
    def post(self, env: str) -> Any:
        """Create an SDK key for the environment; the response holds it once"""
        with db().write() as session:
            key, secret = credentials.create_sdk_key(session, change(), env)
            return {"id": key.id, "environment": env, "prefix": key.prefix, "sdk_key": secret}
