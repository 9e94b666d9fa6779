"""SDK endpoints: snapshot for local evaluation and server-side evaluate (SDK key auth)."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from flask import Response
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import validate

from flagsvc.api.auth import requires_sdk_key
from flagsvc.api.context import current_actor
from flagsvc.api.context import db
from flagsvc.api.context import state
from flagsvc.api.schemas import StrictSchema
from flagsvc.domain.validation import USER_KEY_MAX
from flagsvc.services.evaluation import CachedSnapshot
from flagsvc.services.evaluation import evaluate_flags

blp = Blueprint("sdk", __name__, url_prefix="/sdk/v1", description="SDK endpoints (SDK key auth)")

MAX_CONTEXT_ATTRIBUTES = 100


class ContextField(ma.fields.Dict):
    """An evaluation context: ``{"key": "<user key>", ...attributes}``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        context = super()._deserialize(value, attr, data, **kwargs)  # type: ignore[no-untyped-call]
        key = context.get("key")
        if not isinstance(key, str) or not 1 <= len(key) <= USER_KEY_MAX:
            raise ma.ValidationError(f"needs a 'key': the user key, 1-{USER_KEY_MAX} characters")
        if len(context) > MAX_CONTEXT_ATTRIBUTES:
            raise ma.ValidationError(f"at most {MAX_CONTEXT_ATTRIBUTES} attributes")
        return context


class EvaluateArgsSchema(StrictSchema):
    context = ContextField(keys=ma.fields.String(validate=validate.Length(max=100)), required=True)
    flags = ma.fields.List(
        ma.fields.String(validate=validate.Length(min=1, max=100)),
        validate=validate.Length(max=1000),
        metadata={"description": "Flag keys to evaluate; every flag when omitted"},
    )


class EvaluationSchema(ma.Schema):
    value = ma.fields.Raw(allow_none=True, metadata={"description": "The payload when on"})
    enabled = ma.fields.Boolean()
    reason = ma.fields.String()
    stage = ma.fields.String(allow_none=True)
    matched_cohort = ma.fields.String(allow_none=True)
    error_code = ma.fields.String(allow_none=True)


class EvaluateResultSchema(ma.Schema):
    environment = ma.fields.String()
    version = ma.fields.Integer()
    results = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(EvaluationSchema))


def _snapshot() -> CachedSnapshot:
    environment = current_actor().environment
    assert environment is not None  # requires_sdk_key guarantees it
    with db().read() as session:
        return state().snapshots.get(session, environment)


@blp.route("/evaluate")
class Evaluate(MethodView):
    @requires_sdk_key
    @blp.arguments(EvaluateArgsSchema)
    @blp.response(200, EvaluateResultSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Evaluate flags for a context on the server (for callers without a local SDK)"""
        snapshot = _snapshot()
        results = evaluate_flags(snapshot.compiled, data["context"], data.get("flags"))
        return {
            "environment": snapshot.wire["environment"],
            "version": snapshot.version,
            "results": results,
        }


@blp.route("/snapshot")
class SnapshotView(MethodView):
    @requires_sdk_key
    @blp.doc(
        responses={
            "200": {"description": "The environment's snapshot"},
            "304": {"description": "Unchanged"},
        }
    )
    def get(self) -> Response:
        """Everything one environment needs for local evaluation (ETag / If-None-Match)"""
        snapshot = _snapshot()
        etag = f"{snapshot.wire['environment']}.{snapshot.version}"
        if etag in request.if_none_match:
            response = Response(status=304)
        else:
            response = Response(
                json.dumps(snapshot.wire, separators=(",", ":")), mimetype="application/json"
            )
        response.set_etag(etag)
        return response
