"""The flag_states shapes both HTTP faces use: the API validates with them, the UI's forms too."""

from __future__ import annotations

from collections import Counter
from datetime import UTC
from datetime import datetime
from decimal import Decimal

import marshmallow as ma
from marshmallow import validate

from flagsvc.domain.stages import Stage
from flagsvc.domain.validation import USER_KEY_MAX
from flagsvc.web.schemas import StrictDecimal
from flagsvc.web.schemas import StrictSchema
from flagsvc.web.schemas import key_field
from flagsvc.web.shapes.flags import no_nul

MAX_COHORTS = 50


MAX_EXCLUSIONS = 10_000


HUNDREDTH = Decimal("0.01")


def _percent_rule(value: Decimal) -> None:
    """0–100 with at most two decimals: the ramp is stored in basis points."""
    if not Decimal(0) <= value <= Decimal(100):
        raise ma.ValidationError("must be between 0 and 100")
    if value != value.quantize(HUNDREDTH):
        raise ma.ValidationError("must have at most 2 decimals")


def _above_zero(value: Decimal) -> None:
    """A launch that starts at 0 % would launch nothing.

    (A plain function, not ``validate.Range``: apispec writes a Decimal bound as a
    string, which makes the OpenAPI document invalid.)
    """
    if value <= 0:
        raise ma.ValidationError("must be above 0")


def _unique(values: list[str]) -> None:
    repeated = sorted(value for value, count in Counter(values).items() if count > 1)
    if repeated:
        raise ma.ValidationError(f"listed more than once: {', '.join(repeated)}")


def _utc_representable(value: datetime) -> None:
    """Refuse times that overflow when converted to UTC (year 1 or 9999 edges)."""
    try:
        value.astimezone(UTC)
    except OverflowError as error:
        raise ma.ValidationError("is out of range") from error


class FlagStageMoveSchema(StrictSchema):
    stage = ma.fields.String(required=True, validate=validate.OneOf([s.value for s in Stage]))
    rollout_percent = StrictDecimal(
        validate=_percent_rule,
        metadata={"description": "0–100, at most 2 decimals; only for the general stage"},
    )


class FlagCohortsSchema(StrictSchema):
    cohorts = ma.fields.List(
        key_field(),
        required=True,
        validate=[validate.Length(max=MAX_COHORTS), _unique],
        metadata={"description": "Early-access cohort keys, in order"},
    )
    variations = ma.fields.Dict(
        keys=key_field(),
        values=key_field(),
        load_default=dict,
        metadata={
            "description": "Typed flags: the variation a listed cohort serves (cohort -> "
            "variation key); cohorts not named here serve the on variation"
        },
    )


class FlagExclusionsSchema(StrictSchema):
    users = ma.fields.List(
        ma.fields.String(validate=[validate.Length(min=1, max=USER_KEY_MAX), no_nul]),
        required=True,
        validate=validate.Length(max=MAX_EXCLUSIONS),
        metadata={"description": "User keys that never get the flag here"},
    )


class FlagLaunchSchema(StrictSchema):
    launch_at = ma.fields.AwareDateTime(
        required=True,
        validate=_utc_representable,
        metadata={"description": "ISO 8601 with a UTC offset, in the future"},
    )
    rollout_percent = StrictDecimal(
        load_default=Decimal(100),
        validate=[_percent_rule, _above_zero],
        metadata={"description": "The general ramp the launch starts at: above 0, at most 100"},
    )
