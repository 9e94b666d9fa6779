"""Objects created once, unbound, and attached to the app in ``create_app``."""

from __future__ import annotations

import json
from typing import Any
from typing import NoReturn

import flask
import marshmallow as ma
from flask_smorest import Api
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser
from webargs.flaskparser import abort
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed


class JsonApi(Api):  # type: ignore[misc]
    """flask-smorest's ``Api``, whose error bodies keep the headers HTTP requires."""

    def handle_http_exception(self, error: HTTPException) -> Any:
        """A 405 names the methods the path allows (``Allow``, RFC 9110 §15.5.6)."""
        payload, code, headers = super().handle_http_exception(error)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers = {**headers, "Allow": ", ".join(sorted(error.valid_methods))}
        return payload, code, headers


class StrictParser(FlaskParser):
    """webargs' parser, refusing what Python's ``json`` raises besides a syntax error.

    An integer of more than 4,300 digits is valid JSON that ``json.loads`` refuses with
    a plain ``ValueError`` (CVE-2020-10735's limit), which webargs does not catch: a 500.
    """

    def _raw_load_json(self, req: flask.Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except ValueError as error:  # int() past sys.get_int_max_str_digits()
            self._refuse(error)

    @staticmethod
    def _refuse(error: ValueError) -> NoReturn:
        reason = str(error).split(";")[0]  # drop Python's advice to raise the limit
        abort(400, exc=error, message=f"Invalid JSON body: {reason}.",
              messages={"json": [f"Invalid JSON body: {reason}."]})  # fmt: skip


api = JsonApi()

Blueprint.ARGUMENTS_PARSER = StrictParser()
# webargs ignores unknown query parameters by default; the design rejects unknown
# fields everywhere, so a typo like ``?flg=x`` is a 422, not a silently wider query.
Blueprint.ARGUMENTS_PARSER.unknown = ma.RAISE
