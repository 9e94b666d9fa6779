"""Webhooks: where notifications go (admins only, every change audited), and their
delivery log. The signing secret is in the answer that made it, never again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from flagsvc.api.auth import requires
from flagsvc.domain.roles import Permission
from flagsvc.services.records import Webhook
from flagsvc.services.records import WebhookDelivery
from flagsvc.services.webhooks import registry
from flagsvc.web.context import change
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.schemas import PageArgsSchema
from flagsvc.web.schemas import page
from flagsvc.web.schemas import page_schema
from flagsvc.web.shapes.webhooks import WebhookCreateSchema
from flagsvc.web.shapes.webhooks import WebhookPatchSchema

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/api/v1/webhooks",
    description="Webhooks: signed notifications of launches, readiness, kills and stale flags",
)


class WebhookSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    url = ma.fields.String()
    events = ma.fields.List(ma.fields.String())
    value_streams = ma.fields.List(ma.fields.String())
    environments = ma.fields.List(ma.fields.String())
    format = ma.fields.String()
    active = ma.fields.Boolean()
    version = ma.fields.Integer()
    created_at = ma.fields.DateTime()


class WebhookWithSecretSchema(WebhookSchema):
    secret = ma.fields.String(
        allow_none=True,
        metadata={"description": "The signing secret: in the answer that made it, only."},
    )


class AttemptSchema(ma.Schema):
    attempted_at = ma.fields.DateTime()
    status_code = ma.fields.Integer(allow_none=True)
    latency_ms = ma.fields.Float()
    error = ma.fields.String(allow_none=True)


class DeliverySchema(ma.Schema):
    id = ma.fields.Integer()
    event_id = ma.fields.String()
    event_type = ma.fields.String()
    flag = ma.fields.String(attribute="flag_key", allow_none=True)
    environment = ma.fields.String(allow_none=True)
    status = ma.fields.String(metadata={"description": "pending | delivered | dead"})
    attempts = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    next_attempt_at = ma.fields.DateTime(allow_none=True)
    delivered_at = ma.fields.DateTime(allow_none=True)
    last_status_code = ma.fields.Integer(allow_none=True)
    last_error = ma.fields.String(allow_none=True)
    body = ma.fields.String(metadata={"description": "The exact bytes every attempt sends"})
    attempt_log = ma.fields.List(ma.fields.Nested(AttemptSchema))


DeliveryPageSchema = page_schema(DeliverySchema, "DeliveryPage")


def _with_secret(hook: Webhook, secret: str | None) -> dict[str, Any]:
    return {**{name: getattr(hook, name) for name in WebhookSchema().fields}, "secret": secret}


def _shown(result: registry.Created | Webhook) -> dict[str, Any]:
    if isinstance(result, registry.Created):
        blp.set_etag(registry.webhook_etag(result.webhook))
        return _with_secret(result.webhook, result.secret)
    blp.set_etag(registry.webhook_etag(result))
    return _with_secret(result, None)


@blp.route("")
class Webhooks(MethodView):
    @requires(Permission.MANAGE_WEBHOOKS)
    @blp.response(200, WebhookSchema(many=True))
    def get(self) -> Any:
        """List webhooks (never their secrets)"""
        with db().read() as session:
            return registry.list_webhooks(session)

    @requires(Permission.MANAGE_WEBHOOKS)
    @blp.arguments(WebhookCreateSchema)
    @blp.response(201, WebhookWithSecretSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a webhook; the answer holds its signing secret, once"""
        allow = state().config.webhook_allow_private
        with db().write() as session:
            return _shown(registry.create_webhook(session, change(), data, allow))


@blp.route("/<int:webhook_id>")
class WebhookById(MethodView):
    @requires(Permission.MANAGE_WEBHOOKS)
    @blp.etag
    @blp.response(200, WebhookSchema)
    def get(self, webhook_id: int) -> Any:
        """Get a webhook (never its secret)"""
        with db().read() as session:
            hook = registry.get_webhook(session, webhook_id)
            blp.set_etag(registry.webhook_etag(hook))
            return hook

    @requires(Permission.MANAGE_WEBHOOKS)
    @blp.etag
    @blp.arguments(WebhookPatchSchema)
    @blp.response(200, WebhookWithSecretSchema)
    def patch(self, data: dict[str, Any], webhook_id: int) -> Any:
        """Update a webhook (If-Match required); a new secret is in this answer, once"""
        allow = state().config.webhook_allow_private
        with db().write() as session:
            found = registry.update_webhook(
                session, change(), webhook_id, data, allow, precondition=blp.check_etag
            )
            return _shown(found)

    @requires(Permission.MANAGE_WEBHOOKS)
    @blp.response(204)
    def delete(self, webhook_id: int) -> None:
        """Delete a webhook and its delivery log; pending deliveries are dropped"""
        with db().write() as session:
            registry.delete_webhook(session, change(), webhook_id)


@blp.route("/<int:webhook_id>/deliveries")
class Deliveries(MethodView):
    @requires(Permission.MANAGE_WEBHOOKS)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, DeliveryPageSchema)
    def get(self, args: dict[str, Any], webhook_id: int) -> Any:
        """The delivery log, newest first: every attempt's status code, latency and error"""
        limit = args["limit"]
        with db().read() as session:
            rows = registry.deliveries(session, webhook_id, limit + 1, args["after"] or None)
            attempts = registry.attempts_of(session, [row.id for row in rows[:limit]])
            shown = [_delivery(row, attempts.get(row.id, [])) for row in rows]
        return page(shown, limit, lambda item: int(item["id"]))


def _delivery(row: WebhookDelivery, attempts: Sequence[Any]) -> dict[str, Any]:
    fields = {
        name: getattr(row, name)
        for name in DeliverySchema().fields
        if name not in ("flag", "attempt_log")
    }
    return {**fields, "flag_key": row.flag_key, "attempt_log": list(attempts)}


@blp.route("/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
class Redelivery(MethodView):
    @requires(Permission.MANAGE_WEBHOOKS)
    @blp.response(202, DeliverySchema)
    def post(self, webhook_id: int, delivery_id: int) -> Any:
        """Send a delivery again now: same event id, same bytes (409 while the webhook is
        paused or a worker is sending it); earlier attempts stay in its log"""
        with db().write() as session:
            row = registry.redeliver(session, change(), webhook_id, delivery_id)
            attempts = registry.attempts_of(session, [row.id])
            return _delivery(row, attempts[row.id])
