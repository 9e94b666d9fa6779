"""SDK endpoints (SDK key auth): snapshot, stream, evaluate, enroll / leave, metrics.

The stream protocol (Server-Sent Events) is a contract with every SDK:

- headers ``Content-Type: text/event-stream``, ``Cache-Control: no-cache``,
  ``X-Accel-Buffering: no`` (so nginx-style proxies do not buffer events);
- ``retry: 1000`` then ``event: hello`` with ``{"environment": …, "version": …,
  "keepalive": <seconds>}``: the keep-alive interval, so that SDKs know how long a
  silence means a dead stream (three intervals) whatever the operator set;
- ``event: change`` with the same data whenever the environment's content version
  moves (a change in another environment sends nothing: see ``delivery/snapshots``);
  the SDK then fetches ``/sdk/v1/snapshot`` with ``If-None-Match``;
- ``: keep-alive`` comments every ``stream_keepalive_seconds`` (15 s).

The formatter is a few lines here: the SSE libraries on PyPI either bring their own
Redis connection per stream (flask-sse) or target asyncio frameworks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from flagsvc_sdk.engine import Counted
from flagsvc_sdk.engine import Result
from flagsvc_sdk.engine import is_keyless
from flagsvc_sdk.engine import user_key_of
from flagsvc_sdk.engine.wire import SPEC_VERSION
from flask import Response
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import validate

from flagsvc.api.auth import requires_sdk_key
from flagsvc.delivery import spec1
from flagsvc.delivery.cache import CachedSnapshot
from flagsvc.delivery.cache import evaluate_flags
from flagsvc.delivery.direct import WRITTEN_BY_STREAM
from flagsvc.delivery.direct import DirectSinks
from flagsvc.delivery.direct import Sink
from flagsvc.delivery.direct import sse_event
from flagsvc.delivery.stream_slots import Share
from flagsvc.delivery.watch import EnvironmentWatch
from flagsvc.domain.errors import TooManyRequestsError
from flagsvc.domain.validation import USER_KEY_MAX
from flagsvc.observability import metrics
from flagsvc.services import cohorts
from flagsvc.services import early_adopters
from flagsvc.services import sdk_metrics
from flagsvc.web.context import change
from flagsvc.web.context import current_actor
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.errors import error_response
from flagsvc.web.patterns import Pattern
from flagsvc.web.schemas import StrictSchema
from flagsvc.web.schemas import key_field

blp = Blueprint("sdk", __name__, url_prefix="/sdk/v1", description="SDK endpoints (SDK key auth)")

MAX_CONTEXT_ATTRIBUTES = 100
ADOPTER_HASH = r"^[0-9a-f]{16}$"
"""An SDK's hashed user key (``flagsvc_sdk._metrics.adopter_hash``)."""
REPORTED_REASONS = (Counted.COHORT.value,)
"""Reasons an SDK's metrics batch may break its counts down by (reach needs COHORT)."""
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
STREAM_RETRY_AFTER_SECONDS = 5
SPEC_HEADER = "Flagsvc-Spec"
"""The snapshot spec a client reads; SDKs from spec 2 on always send it."""
SPEC1_ONLY_AGENT = "flagsvc-python-sdk/"
"""The User-Agent of Python SDKs; one that does not send ``SPEC_HEADER`` reads spec 1 only."""
DELTA_HEADER = "Flagsvc-Delta"
"""``1``: the client applies patch answers (``?since=``); without it, full snapshots only."""
HASH_HEADER = "Flagsvc-Content-Hash"
"""On every 200 of the current spec: the hash of the content the answer leaves the
client holding, which it sends back as ``base`` to ask for a patch."""
VARY = f"{SPEC_HEADER}, User-Agent, Accept-Encoding, {DELTA_HEADER}"
"""What a snapshot answer depends on besides the URL and the key."""


class ContextField(ma.fields.Dict):
    """An evaluation context: ``{"key": "<user key>", ...attributes}``.

    The key is made canonical as the engine does it (an integer becomes its decimal
    string), so ``42`` enrols, evaluates and buckets as the SDK's ``42`` does.
    ``keyless``: a context without a key (absent or null) is accepted, as evaluation
    takes it (``enroll`` needs the key).
    """

    def __init__(self, *, keyless: bool = False, **kwargs: Any) -> None:
        super().__init__(keys=ma.fields.String(validate=validate.Length(max=100)), **kwargs)
        self.keyless = keyless

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        context = super()._deserialize(value, attr, data, **kwargs)  # type: ignore[no-untyped-call]
        if len(context) > MAX_CONTEXT_ATTRIBUTES:
            raise ma.ValidationError(f"at most {MAX_CONTEXT_ATTRIBUTES} attributes")
        if self.keyless and is_keyless(context):
            return {name: item for name, item in context.items() if name != "key"}
        key = user_key_of(context)
        if key is None or len(key) > USER_KEY_MAX:
            raise ma.ValidationError(
                f"needs a 'key': the user key, 1-{USER_KEY_MAX} characters or an integer"
                + (" (or none at all)" if self.keyless else "")
            )
        return {**context, "key": key}


class EvaluateArgsSchema(StrictSchema):
    context = ContextField(keyless=True, required=True)
    flags = ma.fields.List(
        ma.fields.String(validate=validate.Length(min=1, max=100)),
        validate=validate.Length(max=1000),
        metadata={"description": "Flag keys to evaluate; every flag when omitted"},
    )


class EvaluationSchema(ma.Schema):
    variation = ma.fields.String(
        allow_none=True, metadata={"description": "The variation served; null: use your default"}
    )
    value = ma.fields.Raw(
        allow_none=True, metadata={"description": "Its value, of the flag's type; null: none"}
    )
    enabled = ma.fields.Boolean(metadata={"description": "Reached by the release"})
    reason = ma.fields.String(
        metadata={"description": "STATIC, TARGETING_MATCH, SPLIT, DISABLED, DEFAULT or ERROR"}
    )
    error_code = ma.fields.String(allow_none=True)
    stage = ma.fields.String(allow_none=True)
    matched_cohort = ma.fields.String(allow_none=True)
    key_result = ma.fields.Integer(allow_none=True)
    flow_item = ma.fields.String(allow_none=True)


class EvaluateResultSchema(ma.Schema):
    environment = ma.fields.String()
    version = ma.fields.Integer()
    results = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(EvaluationSchema))


class MembershipArgsSchema(StrictSchema):
    cohort = key_field(required=True, metadata={"description": "An opt-in cohort's key"})
    context = ContextField(required=True)


class MembershipSchema(ma.Schema):
    cohort = ma.fields.String()
    user_key = ma.fields.String()
    member = ma.fields.Boolean(metadata={"description": "Explicit member after the call"})
    changed = ma.fields.Boolean(metadata={"description": "False when it was already so"})


class EvaluationCountSchema(StrictSchema):
    flag = ma.fields.String(required=True, validate=validate.Length(min=1, max=100))
    count = ma.fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=1_000_000_000)
    )
    last_evaluated_at = ma.fields.AwareDateTime(
        required=True, metadata={"description": "ISO 8601 with a UTC offset"}
    )
    reasons = ma.fields.Dict(
        keys=ma.fields.String(validate=validate.OneOf(REPORTED_REASONS)),
        values=ma.fields.Integer(strict=True, validate=validate.Range(min=0, max=1_000_000_000)),
        metadata={
            "description": "How many of the count had each reason; COHORT: answered on "
            "through an early-access cohort (the flag's early-access reach)"
        },
    )

    early_adopters = ma.fields.List(
        ma.fields.String(validate=Pattern(ADOPTER_HASH)),
        validate=validate.Length(max=early_adopters.MAX_ADOPTERS_PER_ENTRY),
        metadata={
            "description": "Hashed keys (16 hex digits, never the raw key) of users the "
            "flag was on for through an early-access cohort since the last batch; counted "
            "as distinct early adopters (HyperLogLog, standard error 0.81 %)"
        },
    )

    @ma.validates_schema
    def _reasons_within_count(self, data: dict[str, Any], **_kwargs: Any) -> None:
        for reason, count in data.get("reasons", {}).items():
            if count > data.get("count", 0):
                raise ma.ValidationError(f"{reason}: more than count", "reasons")


class MetricsArgsSchema(StrictSchema):
    evaluations = ma.fields.List(
        ma.fields.Nested(EvaluationCountSchema),
        required=True,
        validate=validate.Length(max=sdk_metrics.MAX_BATCH),
    )


class MetricsResultSchema(ma.Schema):
    accepted = ma.fields.Integer()
    ignored = ma.fields.Integer(metadata={"description": "Entries naming no known flag"})


def _environment() -> str:
    environment = current_actor().environment
    assert environment is not None  # requires_sdk_key guarantees it
    return environment


def _snapshot() -> CachedSnapshot:
    """The caller's environment's snapshot: one ``max(seq)`` lookup when nothing changed."""
    return state().snapshots.get(db().read, _environment())


@blp.route("/evaluate")
class Evaluate(MethodView):
    @requires_sdk_key
    @blp.arguments(EvaluateArgsSchema)
    @blp.response(200, EvaluateResultSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Evaluate flags for a context on the server (for callers without a local SDK)"""
        snapshot = _snapshot()
        results = evaluate_flags(snapshot.compiled, data["context"], data.get("flags"))
        body = evaluation_json(snapshot.environment, snapshot.version, results)
        return Response(body, mimetype="application/json")


def evaluation_json(environment: str, version: int, results: Mapping[str, Result]) -> bytes:
    """``EvaluateResultSchema``'s output, written directly.

    The schema stays the documentation; dumping 200 results through it took three
    quarters of the request (marshmallow walks nine fields per result). Every field
    is already JSON-ready: enums are ``StrEnum``s, values came from JSON.
    """
    return json.dumps(
        {
            "environment": environment,
            "version": version,
            "results": {
                key: {
                    "variation": r.variation,
                    "value": r.value,
                    "enabled": r.enabled,
                    "reason": r.reason,
                    "error_code": r.error_code,
                    "stage": r.stage,
                    "matched_cohort": r.matched_cohort,
                    "key_result": r.key_result,
                    "flow_item": r.flow_item,
                }
                for key, r in results.items()
            },
        },
        separators=(",", ":"),
    ).encode()


class _Additive(ma.Schema):
    """Documents the snapshot wire format; readers ignore fields they do not know."""

    class Meta:
        unknown = ma.INCLUDE


class FlagWireSchema(_Additive):
    key = ma.fields.String()
    salt = ma.fields.String()
    stage = ma.fields.String()
    rollout_percent = ma.fields.Float()
    killed = ma.fields.Boolean()
    cohorts = ma.fields.List(ma.fields.String())
    exclusions = ma.fields.List(ma.fields.String())
    type = ma.fields.String(metadata={"description": "boolean, string, integer, float, object"})
    variations = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Raw())
    on = ma.fields.String(metadata={"description": "The variation general rollout serves"})
    off = ma.fields.String(allow_none=True, metadata={"description": "null: caller's default"})
    cohort_variations = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    key_result = ma.fields.Integer(allow_none=True)
    flow_item = ma.fields.String(allow_none=True)


class CohortWireSchema(_Additive):
    key = ma.fields.String()
    members = ma.fields.List(ma.fields.String())
    rules = ma.fields.List(ma.fields.Dict())
    opt_in = ma.fields.Boolean()


class SnapshotWireSchema(_Additive):
    spec_version = ma.fields.Integer()
    environment = ma.fields.String()
    version = ma.fields.Integer(metadata={"description": "Moves when this environment changes"})
    flags = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(FlagWireSchema))
    cohorts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(CohortWireSchema))


class PatchStepWireSchema(_Additive):
    from_version = ma.fields.Integer()
    to_version = ma.fields.Integer()
    flags_upserted = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Nested(FlagWireSchema)
    )
    flags_removed = ma.fields.List(ma.fields.String())
    cohorts_upserted = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Nested(CohortWireSchema),
        metadata={"description": "New cohorts, or cohorts whose rules changed: whole"},
    )
    cohorts_removed = ma.fields.List(ma.fields.String())
    members_added = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.List(ma.fields.String())
    )
    members_removed = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.List(ma.fields.String())
    )


class PatchWireSchema(_Additive):
    spec_version = ma.fields.Integer()
    environment = ma.fields.String()
    from_version = ma.fields.Integer(metadata={"description": "The since asked for"})
    version = ma.fields.Integer(metadata={"description": "The version it leaves the SDK at"})
    patches = ma.fields.List(
        ma.fields.Nested(PatchStepWireSchema), metadata={"description": "Applied in order"}
    )


class SnapshotQuerySchema(ma.Schema):
    """``since`` / ``base``: what the SDK holds (other query parameters are ignored)."""

    class Meta:
        unknown = ma.EXCLUDE

    since = ma.fields.Integer(
        strict=False,
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={"description": "The version held: answer a patch from it if possible"},
    )
    base = ma.fields.String(
        validate=validate.Length(min=1, max=128),
        metadata={"description": f"The {HASH_HEADER} of the content held at since"},
    )


@blp.route("/snapshot")
class SnapshotView(MethodView):
    @requires_sdk_key
    @blp.arguments(SnapshotQuerySchema, location="query", as_kwargs=True)
    @blp.alt_response(
        200,
        schema=SnapshotWireSchema,
        description=f"The environment's snapshot; or, to a client sending {DELTA_HEADER}: 1 "
        "with since, maybe a patch from that version (schema PatchWire)",
        success=True,
    )
    @blp.alt_response(304, description="Unchanged since the If-None-Match ETag", success=True)
    def get(self, since: int | None = None, base: str | None = None) -> Response:
        """Everything one environment needs for local evaluation (ETag / If-None-Match)

        The spec is the one the client reads: header `Flagsvc-Spec: 2` (or 1); without
        it, flagsvc-sdk 1.0.0 and earlier (which read only spec 1 and never send it) get
        spec 1 with the flags spec 1 can say exactly, everyone else the current spec.
        The current spec is sent gzip-compressed to callers that accept it (compressed
        once per version); the ETag is the same for both codings: both decode to the
        same snapshot.

        Deltas: a client that sends `Flagsvc-Delta: 1` and `?since=<version held>`
        (with `&base=<its Flagsvc-Content-Hash>`) gets a patch answer from that version
        when this instance holds the steps and they weigh less than the snapshot;
        otherwise the full snapshot. Either way the ETag is the current version's.
        """
        spec = _wanted_spec()
        if isinstance(spec, Response):
            return spec
        snapshot = _snapshot()
        encoded = snapshot.encoded
        etag = spec1.etag(encoded) if spec == spec1.SPEC else encoded.etag
        if etag in request.if_none_match:
            response = Response(status=304)
        elif spec == spec1.SPEC:
            response = Response(spec1.body(encoded), mimetype="application/json")
        else:
            response = _current_spec_answer(snapshot, since, base)
        response.set_etag(etag)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Vary"] = VARY
        return response


def _current_spec_answer(snapshot: CachedSnapshot, since: int | None, base: str | None) -> Response:
    """A 200 of the current spec: a patch when asked and worth it, else the snapshot."""
    gzipped = accepts_gzip(request.headers.get("Accept-Encoding"))
    full = snapshot.gzipped() if gzipped else snapshot.encoded.body
    patch = None
    if since is not None and request.headers.get(DELTA_HEADER, "").strip() == "1":
        patch = state().snapshots.patch_since(snapshot, since, base)
    if patch is not None and len(patch) < len(full):
        response = Response(patch, mimetype="application/json")
    else:
        response = Response(full, mimetype="application/json")
        if gzipped:
            response.headers["Content-Encoding"] = "gzip"
    response.headers[HASH_HEADER] = snapshot.encoded.content_hash
    return response


def _wanted_spec() -> int | Response:
    """The spec the caller reads, or a 406 naming the ones served."""
    asked = request.headers.get(SPEC_HEADER)
    if asked is None:
        agent = request.headers.get("User-Agent", "")
        return spec1.SPEC if agent.startswith(SPEC1_ONLY_AGENT) else SPEC_VERSION
    if asked.strip() in {str(spec1.SPEC), str(SPEC_VERSION)}:
        return int(asked)
    return error_response(
        HTTPStatus.NOT_ACCEPTABLE,
        f"{SPEC_HEADER}: this service serves spec {spec1.SPEC} and {SPEC_VERSION}, "
        f"not {asked[:20]!r}",
        field=SPEC_HEADER,
    )


def accepts_gzip(header: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value accepts gzip (``gzip;q=0`` refuses it).

    A small parser of our own: the fast path (``api.sdk_fast``) answers without
    Flask's request object, and both must agree.
    """
    if not header:
        return False
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        name, _, value = params.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value) > 0
            except ValueError:
                return False
        return True
    return False


@blp.route("/stream")
class StreamView(MethodView):
    @requires_sdk_key
    @blp.alt_response(
        200,
        schema={"type": "string"},
        content_type="text/event-stream",
        description="hello, then a change event per change, and keep-alives",
        success=True,
    )
    @blp.alt_response(503, description="This instance holds its maximum of streams; Retry-After")
    @blp.alt_response(
        429,
        description="This SDK key or client address holds its share of the instance's "
        "streams (FLAGSVC_MAX_STREAMS_PER_KEY / _PER_ADDRESS); Retry-After",
    )
    def get(self) -> Response:
        """Server-Sent Events: a change event whenever the environment changes"""
        app_state = state()
        if app_state.broker.subscriber_count >= app_state.config.max_streams:
            return _no_stream(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "this instance holds its maximum of open streams; retry or poll /sdk/v1/snapshot",
            )
        key_id = current_actor().sdk_key_id
        assert key_id is not None  # requires_sdk_key guarantees it
        slot = app_state.streams.take(key_id, request.remote_addr or "")
        if isinstance(slot, Share):
            return _no_stream(
                HTTPStatus.TOO_MANY_REQUESTS,
                f"{slot.what} holds its share of this instance's streams ({slot.limit}); "
                "close one, retry later or poll /sdk/v1/snapshot",
            )
        subscription = app_state.broker.subscribe()  # before hello: no change falls between
        app_state.revocations.hold(key_id, subscription)  # revoked: ends
        watch = EnvironmentWatch(app_state.snapshots, db().read, _environment(), subscription)

        def hang_up() -> None:  # the client is gone: its slot back now, the stream wakes
            slot.release()
            subscription.end()

        forget = app_state.hangups.watch(request.environ.get("gunicorn.socket"), hang_up)

        def close() -> None:
            forget()
            watch.close()
            slot.release()

        try:
            hello = watch.hello()
        except BaseException:
            close()
            raise
        events = _stream_body(app_state.snapshots.sinks, watch, hello, close)
        response = Response(events, content_type="text/event-stream", headers=STREAM_HEADERS)
        response.call_on_close(close)  # also when the body never started
        return response


def _stream_body(
    sinks: DirectSinks, watch: EnvironmentWatch, hello: int, close: Callable[[], None]
) -> Iterator[bytes]:
    """The stream's events: written by the change fan-out where the socket allows it."""
    keepalive = state().config.stream_keepalive_seconds
    sink = sinks.sink_for(request.environ, watch.environment, hello)
    if sink is None:
        return _events(watch, hello, keepalive, close)
    return _direct_events(watch, hello, keepalive, close, sink)


def _no_stream(status: HTTPStatus, message: str) -> Response:
    response = error_response(status, message)
    response.headers["Retry-After"] = str(STREAM_RETRY_AFTER_SECONDS)
    return response


def _hello(environment: str, version: int, keepalive: float) -> bytes:
    """The first event of a stream: the version, and the keep-alive interval to expect."""
    data = json.dumps({"environment": environment, "version": version, "keepalive": keepalive})
    return f"event: hello\ndata: {data}\n\n".encode()


def _events(
    watch: EnvironmentWatch, hello: int, keepalive: float, close: Callable[[], None]
) -> Iterator[bytes]:
    """The event stream; runs after the view returned (no request context here).

    A client that went away is found by the process's ``HangupWatch`` within a second
    (its slot is freed there and the subscription ended, which wakes this loop), or
    at the latest as a failed write, which closes this generator (``GeneratorExit`` at
    the ``yield``): the ``finally`` frees its subscription and its slot (``close``).
    The server resumes it only after writing what it yielded, so the propagation delay
    is taken then: from the change's commit to its event written to this stream.
    """
    try:
        yield b"retry: 1000\n\n" + _hello(watch.environment, hello, keepalive)
        while not watch.subscription.closed:
            version = watch.next_change(keepalive)
            if version is None:
                yield b": keep-alive\n\n"
                continue
            committed_at = watch.subscription.committed_at
            yield sse_event("change", watch.environment, version)
            WRITTEN_BY_STREAM.inc()
            if committed_at is not None:
                metrics.CHANGE_PROPAGATION.observe(max(0.0, time.time() - committed_at))
    finally:
        close()


def _direct_events(
    watch: EnvironmentWatch, hello: int, keepalive: float, close: Callable[[], None], sink: Sink
) -> Iterator[bytes]:
    """``_events`` for a stream the change fan-out writes to directly (``delivery.direct``).

    After the hello is written (gunicorn resumes the generator only then) the sink is
    opened; from then on every write of this stream's own happens under the sink's lock
    (held across the ``yield``: gunicorn writes what was yielded before resuming), and a
    change the fan-out already wrote here is not sent again.
    """
    try:
        yield b"retry: 1000\n\n" + _hello(watch.environment, hello, keepalive)
        sink.start()
        while not watch.subscription.closed:
            version = watch.next_change(keepalive)
            committed_at = watch.subscription.committed_at
            with sink.writing():
                if version is None:
                    yield b": keep-alive\n\n"
                    continue
                if version != sink.last:
                    sink.last = version
                    yield sse_event("change", watch.environment, version)
                    delivered_at = time.time()
                    WRITTEN_BY_STREAM.inc()
                else:  # written by the fan-out
                    delivered_at = sink.delivered_at or time.time()
            if committed_at is not None:
                metrics.CHANGE_PROPAGATION.observe(max(0.0, delivered_at - committed_at))
    finally:
        sink.close()
        close()


@blp.route("/enroll")
class Enroll(MethodView):
    @requires_sdk_key
    @blp.arguments(MembershipArgsSchema)
    @blp.response(200, MembershipSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Enrol the context's user in an opt-in cohort (idempotent; audited)"""
        return _membership(cohorts.enroll, data, member=True)


@blp.route("/leave")
class Leave(MethodView):
    @requires_sdk_key
    @blp.arguments(MembershipArgsSchema)
    @blp.response(200, MembershipSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Take the context's user out of an opt-in cohort (idempotent; audited)"""
        return _membership(cohorts.leave, data, member=False)


def _membership(
    action: Callable[..., bool], data: dict[str, Any], *, member: bool
) -> dict[str, Any]:
    """Enrol or leave, within the key's environment and its ``FLAGSVC_ENROLL_LIMIT``."""
    wait = state().enrollments.take(f"sdk-key:{current_actor().sdk_key_id}")
    if wait:
        raise TooManyRequestsError("enrolments and departures by this SDK key", wait)
    user_key = data["context"]["key"]
    where = cohorts.Membership(data["cohort"], user_key, _environment())
    with db().write() as session:
        changed = action(session, change(), where)
    return {"cohort": data["cohort"], "user_key": user_key, "member": member, "changed": changed}


@blp.route("/metrics")
class Metrics(MethodView):
    @requires_sdk_key
    @blp.arguments(MetricsArgsSchema)
    @blp.response(202, MetricsResultSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Batched evaluation counts from an SDK (not audited: they record no change)"""
        counts = [
            sdk_metrics.EvaluationCount(
                e["flag"],
                e["count"],
                e["last_evaluated_at"],
                e.get("reasons", {}).get(Counted.COHORT.value, 0),
                tuple(e.get("early_adopters", ())),
            )
            for e in data["evaluations"]
        ]
        with db().write() as session:
            recorded = sdk_metrics.record_evaluations(
                session, _environment(), counts, state().clock(), state().early_adopters
            )
        metrics.SDK_EVALUATIONS.labels(_environment()).inc(recorded.evaluations)  # committed
        return {"accepted": recorded.accepted, "ignored": recorded.ignored}
