"""Objects created once, unbound, and attached to the app in ``create_app``."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Api
from flask_smorest import Blueprint

api = Api()

# webargs ignores unknown query parameters by default; the design rejects unknown
# fields everywhere, so a typo like ``?flg=x`` is a 422, not a silently wider query.
Blueprint.ARGUMENTS_PARSER.unknown = ma.RAISE
