"""Per-environment flag state and stage transitions.

Stage moves, the kill switch and launch scheduling are commands: If-Match is optional
(a kill switch must work without fetching first). Cohort and exclusion lists are
replaced whole, so they require If-Match like any other whole-resource PUT.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from flagsvc.api.auth import requires
from flagsvc.api.etags import optional_if_match
from flagsvc.domain.roles import Permission
from flagsvc.domain.stages import Stage
from flagsvc.services import flag_states
from flagsvc.services import launches
from flagsvc.services.flag_states import FlagStateDetail
from flagsvc.services.flag_states import Where
from flagsvc.web.context import change
from flagsvc.web.context import db
from flagsvc.web.shapes.flag_states import FlagCohortsSchema
from flagsvc.web.shapes.flag_states import FlagExclusionsSchema
from flagsvc.web.shapes.flag_states import FlagLaunchSchema
from flagsvc.web.shapes.flag_states import FlagStageMoveSchema

blp = Blueprint(
    "flag-states",
    __name__,
    url_prefix="/api/v1/flags",
    description="Per-environment flag state and stage transitions",
)

STATE = "/<string:flag_key>/environments/<string:env>"


class FlagStateReadinessSchema(ma.Schema):
    ready = ma.fields.Boolean()
    missing = ma.fields.List(ma.fields.String())


class FlagStateSchema(ma.Schema):
    flag = ma.fields.String(attribute="state.flag.key")
    environment = ma.fields.String(attribute="state.environment.key")
    gated = ma.fields.Boolean(attribute="state.environment.gated")
    stage = ma.fields.String(attribute="state.stage")
    rollout_percent = ma.fields.Float()
    killed = ma.fields.Boolean(attribute="state.killed")
    cohorts = ma.fields.List(ma.fields.String())
    cohort_variations = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "Cohorts serving their own variation; the rest serve on"},
    )
    exclusions = ma.fields.List(ma.fields.String())
    launch_at = ma.fields.DateTime(attribute="state.launch_at", allow_none=True)
    launch_rollout_percent = ma.fields.Method(
        "_launch_percent", metadata={"description": "The ramp a scheduled launch starts at"}
    )
    version = ma.fields.Integer(attribute="state.version")
    updated_at = ma.fields.DateTime(attribute="state.updated_at")
    readiness = ma.fields.Nested(FlagStateReadinessSchema)

    def _launch_percent(self, detail: FlagStateDetail) -> float | None:
        return launches.launch_percent(detail.state)


@blp.route(STATE)
class FlagStateByEnvironment(MethodView):
    @requires(Permission.READ)
    @blp.etag
    @blp.response(200, FlagStateSchema)
    def get(self, flag_key: str, env: str) -> Any:
        """Get a flag's stage, ramp, cohorts, exclusions and launch in one environment"""
        with db().read() as session:
            return _tagged(flag_states.get_state(session, Where(flag_key, env)))


@blp.route(f"{STATE}/stage")
class FlagStage(MethodView):
    @requires(Permission.MOVE_STAGES)
    @blp.etag
    @blp.arguments(FlagStageMoveSchema)
    @blp.response(200, FlagStateSchema)
    def post(self, data: dict[str, Any], flag_key: str, env: str) -> Any:
        """Move the flag to a stage, or ramp general rollout (If-Match optional)

        In a gated environment, entering or widening general rollout needs complete
        readiness (409 names the missing items); a rollback or ramp-down never waits.
        """
        with db().write() as session:
            detail = flag_states.move_stage(
                session,
                change(),
                Where(flag_key, env),
                Stage(data["stage"]),
                data.get("rollout_percent"),
                precondition=optional_if_match(blp),
            )
            return _tagged(detail)


@blp.route(f"{STATE}/cohorts")
class FlagCohorts(MethodView):
    @requires(Permission.MOVE_STAGES)
    @blp.etag
    @blp.arguments(FlagCohortsSchema)
    @blp.response(200, FlagStateSchema)
    def put(self, data: dict[str, Any], flag_key: str, env: str) -> Any:
        """Set the early-access cohorts, in order, and what each serves (If-Match required)"""
        with db().write() as session:
            detail = flag_states.set_cohorts(
                session,
                change(),
                Where(flag_key, env),
                data["cohorts"],
                blp.check_etag,
                own_variations=data["variations"],
            )
            return _tagged(detail)


@blp.route(f"{STATE}/exclusions")
class FlagExclusions(MethodView):
    @requires(Permission.MOVE_STAGES)
    @blp.etag
    @blp.arguments(FlagExclusionsSchema)
    @blp.response(200, FlagStateSchema)
    def put(self, data: dict[str, Any], flag_key: str, env: str) -> Any:
        """Replace the users who never get the flag in this environment (If-Match required)"""
        with db().write() as session:
            detail = flag_states.set_exclusions(
                session, change(), Where(flag_key, env), data["users"], blp.check_etag
            )
            return _tagged(detail)


@blp.route(f"{STATE}/kill")
class FlagKill(MethodView):
    @requires(Permission.MOVE_STAGES)
    @blp.etag
    @blp.response(200, FlagStateSchema)
    def post(self, flag_key: str, env: str) -> Any:
        """Switch the flag off for everyone in this environment at once (idempotent)"""
        return _kill_switch(Where(flag_key, env), killed=True)


@blp.route(f"{STATE}/resume")
class FlagResume(MethodView):
    @requires(Permission.MOVE_STAGES)
    @blp.etag
    @blp.response(200, FlagStateSchema)
    def post(self, flag_key: str, env: str) -> Any:
        """Undo the kill switch: the flag serves its stage again (idempotent)"""
        return _kill_switch(Where(flag_key, env), killed=False)


@blp.route(f"{STATE}/launch")
class FlagLaunch(MethodView):
    @requires(Permission.SCHEDULE_LAUNCH)
    @blp.arguments(FlagLaunchSchema)
    @blp.response(200, FlagStateSchema)
    def put(self, data: dict[str, Any], flag_key: str, env: str) -> Any:
        """Schedule general rollout of a ready flag in early access (If-Match optional)

        When it is due, the scheduler moves the flag to ``general`` at
        ``rollout_percent`` (default 100), through the same gate as a manual move.
        """
        with db().write() as session:
            return launches.schedule_launch(
                session,
                change(),
                Where(flag_key, env),
                data["launch_at"],
                optional_if_match(blp),
                rollout_percent=data["rollout_percent"],
            )

    @requires(Permission.SCHEDULE_LAUNCH)
    @blp.response(200, FlagStateSchema)
    def delete(self, flag_key: str, env: str) -> Any:
        """Cancel the scheduled launch (409 when none is scheduled; If-Match optional)"""
        with db().write() as session:
            return launches.cancel_launch(
                session, change(), Where(flag_key, env), optional_if_match(blp)
            )


def _kill_switch(where: Where, *, killed: bool) -> Any:
    with db().write() as session:
        detail = flag_states.set_killed(
            session, change(), where, killed, precondition=optional_if_match(blp)
        )
        return _tagged(detail)


def _tagged(detail: FlagStateDetail) -> FlagStateDetail:
    """Send the state's ETag with the answer (304 on a matching If-None-Match)."""
    blp.set_etag(flag_states.detail_etag(detail))
    return detail
