"""HTTP only: flask-smorest blueprints and marshmallow schemas over the services."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask import Response
from werkzeug.routing import IntegerConverter
from werkzeug.routing import Map

import flagsvc.extensions  # noqa: F401  (before the blueprints: they bind its parser)
from flagsvc.api import audit
from flagsvc.api import cohorts
from flagsvc.api import environments
from flagsvc.api import flag_states
from flagsvc.api import flags
from flagsvc.api import instrument
from flagsvc.api import launches
from flagsvc.api import okrs
from flagsvc.api import ops
from flagsvc.api import promise
from flagsvc.api import readiness
from flagsvc.api import sdk
from flagsvc.api import timing
from flagsvc.api import tokens
from flagsvc.api import value_streams
from flagsvc.api import webhooks
from flagsvc.api.sdk_fast import SnapshotFastPath
from flagsvc.extensions import api
from flagsvc.web.body_limits import LimitedRequest
from flagsvc.web.context import REQUEST_ID_HEADER
from flagsvc.web.context import request_id
from flagsvc.web.errors import register_error_handlers

BLUEPRINTS = (
    tokens.blp,
    environments.blp,
    okrs.blp,
    flags.blp,
    flag_states.blp,
    readiness.blp,
    cohorts.blp,
    audit.blp,
    timing.blp,
    promise.blp,
    launches.blp,
    value_streams.blp,
    webhooks.blp,
    sdk.blp,
)


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` ids that fit the 32-bit id columns: larger is a 404, not a DB error."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)  # PostgreSQL INTEGER primary keys
        super().__init__(url_map, *args, **kwargs)


def init_api(app: Flask) -> None:
    """Bind flask-smorest, the error handlers and every blueprint to ``app``."""
    app.url_map.converters["int"] = BoundedIntConverter  # before any route is added
    app.request_class = LimitedRequest  # form bodies limited before parsing
    app.config.update(
        API_TITLE="flagsvc",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/static/vendor/swagger-ui/",  # vendored: works offline
    )
    api.init_app(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.components.schema("PatchWire", schema=sdk.PatchWireSchema)  # a 200 may be one
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    app.register_blueprint(ops.bp)
    register_error_handlers(app)
    app.after_request(_tag_request_id)
    instrument.init_app(app, app.extensions["flagsvc"].config)
    # SDK polls answered from memory in front of Flask (the rest falls through to it)
    app.wsgi_app = SnapshotFastPath(app.wsgi_app, app.extensions["flagsvc"])  # type: ignore[method-assign]


def _tag_request_id(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id()
    return response
