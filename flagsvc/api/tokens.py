"""Admin-API tokens: created by admins, shown once, stored hashed, revocable."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from flagsvc.api.auth import requires
from flagsvc.domain.roles import Permission
from flagsvc.domain.roles import Role
from flagsvc.services import credentials
from flagsvc.web.context import change
from flagsvc.web.context import db
from flagsvc.web.shapes.tokens import TokenCreateSchema

blp = Blueprint(
    "tokens", __name__, url_prefix="/api/v1/tokens", description="Admin-API tokens and their roles"
)


class TokenSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    role = ma.fields.String()
    prefix = ma.fields.String(
        metadata={"description": "First characters of the token, to tell tokens apart"}
    )
    created_at = ma.fields.DateTime()
    revoked_at = ma.fields.DateTime(allow_none=True)


class TokenCreatedSchema(TokenSchema):
    token = ma.fields.String(
        metadata={"description": "The token itself. Shown only in this response."}
    )


@blp.route("")
class Tokens(MethodView):
    @requires(Permission.MANAGE_TOKENS)
    @blp.response(200, TokenSchema(many=True))
    def get(self) -> Any:
        """List tokens (never their secrets)"""
        with db().read() as session:
            return credentials.list_tokens(session)

    @requires(Permission.MANAGE_TOKENS)
    @blp.arguments(TokenCreateSchema)
    @blp.response(201, TokenCreatedSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a token; the response holds it once"""
        with db().write() as session:
            token, secret = credentials.create_token(
                session, change(), data["name"], Role(data["role"])
            )
            return {**{f: getattr(token, f) for f in TokenSchema().fields}, "token": secret}


@blp.route("/<int:token_id>")
class TokenById(MethodView):
    @requires(Permission.MANAGE_TOKENS)
    @blp.response(200, TokenSchema)
    def delete(self, token_id: int) -> Any:
        """Revoke a token"""
        with db().write() as session:
            return credentials.revoke_token(session, change(), token_id)
