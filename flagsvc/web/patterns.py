"""Regular-expression rules that hold for the whole value (see ``Pattern``)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate


class Pattern(validate.Regexp):
    """A ``Regexp`` the whole value must match (``re.fullmatch``).

    ``re.match`` with ``^…$`` let a trailing newline through (``period: "2026\\n"`` was
    stored). The pattern text stays ``^…$``, which the OpenAPI document carries as is
    (``\\Z`` is not JSON Schema's regex dialect).
    """

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value
