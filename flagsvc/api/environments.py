"""Environments and their SDK keys."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from flagsvc.api.auth import requires
from flagsvc.domain.roles import Permission
from flagsvc.services import credentials
from flagsvc.services import environments
from flagsvc.web.context import change
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.shapes.environments import EnvironmentCreateSchema

blp = Blueprint(
    "environments",
    __name__,
    url_prefix="/api/v1/environments",
    description="Environments and SDK keys",
)


class EnvironmentSchema(ma.Schema):
    key = ma.fields.String()
    name = ma.fields.String()
    gated = ma.fields.Boolean()
    version = ma.fields.Integer()
    created_at = ma.fields.DateTime()


class SdkKeySchema(ma.Schema):
    id = ma.fields.Integer()
    environment = ma.fields.String(attribute="environment.key")
    prefix = ma.fields.String(
        metadata={"description": "First characters of the key, to tell keys apart"}
    )
    created_at = ma.fields.DateTime()
    last_used_at = ma.fields.DateTime(
        allow_none=True,
        metadata={"description": "Last authenticated request (to the minute); null: never"},
    )
    revoked_at = ma.fields.DateTime(allow_none=True)


class SdkKeyCreatedSchema(SdkKeySchema):
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
    @blp.response(200, SdkKeySchema(many=True))
    def get(self, env: str) -> Any:
        """List the environment's SDK keys, revoked ones too (never the keys themselves)"""
        with db().read() as session:
            return credentials.list_sdk_keys(session, env)

    @requires(Permission.MANAGE_ENVIRONMENTS)
    @blp.response(201, SdkKeyCreatedSchema)
    def post(self, env: str) -> Any:
        """Create an SDK key for the environment; the response holds it once"""
        with db().write() as session:
            key, secret = credentials.create_sdk_key(session, change(), env)
            return {**{f: getattr(key, f) for f in SdkKeySchema().fields}, "sdk_key": secret}


@blp.route("/<string:env>/sdk-keys/<int:key_id>")
class SdkKeyById(MethodView):
    @requires(Permission.MANAGE_ENVIRONMENTS)
    @blp.response(200, SdkKeySchema)
    def delete(self, env: str, key_id: int) -> Any:
        """Revoke an SDK key: every instance refuses it within a second and ends its streams"""
        with db().write() as session:
            key = credentials.revoke_sdk_key(session, change(), env, key_id)
        state().revocations.announce(key.id)  # after the commit: others re-read the database
        return key
