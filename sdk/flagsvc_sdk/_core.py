"""What :class:`~flagsvc_sdk.Client` and :class:`~flagsvc_sdk.AsyncClient` share: local
evaluation on a snapshot kept current in the background, status, listeners, fork safety.

Reading is lock-free: the compiled snapshot lives in one attribute (``_current``) that
the updater replaces with a single assignment, so a reader sees either the old snapshot
or the new one, never a mix. Evaluation never raises into product code; only a bad
argument to the constructor does (:class:`~flagsvc_sdk.errors.ConfigurationError`).
Background work (the updater and metrics threads, ``_background.py``) runs on the
client's own threads in both clients, so evaluation never waits on it, and an event
loop busy with other work cannot starve it.

Fork-safe: in a child of ``fork()`` the client parks what it inherited and restarts its
background work (new connections, new threads) on first use there (``_fork.py``), or
at once when the child calls ``postfork()``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Callable
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar
from typing import cast

import httpx
import mmh3

from ._answers import Answers
from ._answers import general_error
from ._answers import not_ready
from ._answers import type_mismatch
from ._answers import with_default
from ._background import Background
from ._background import Settings
from ._checks import Counters
from ._checks import Plan
from ._checks import compile_plans
from ._fork import in_uwsgi_master
from ._fork import track
from ._fork import uwsgi_without_threads
from ._listeners import Listeners
from ._status import StatusBoard
from ._store import Loaded
from ._store import compile_document
from ._store import parse_document
from ._store import read_snapshot_file
from ._store import write_atomic
from ._sync import Hooks
from ._transport import Fetched
from ._transport import Transport
from .engine import BUCKETS
from .engine import FLAG_NOT_FOUND
from .engine import Context
from .engine import EngineError
from .engine import Snapshot
from .engine import ValueType
from .engine import canonical_context
from .engine import is_keyless
from .engine.patches import apply_patches
from .engine.patches import dump_snapshot
from .engine.patches import is_patch_document
from .errors import ConfigurationError
from .errors import FetchError
from .errors import PatchRefusedError
from .evaluation import ErrorCode
from .evaluation import Evaluation
from .evaluation import JsonObject
from .events import Change
from .events import ChangeListener
from .events import Status
from .events import StatusListener
from .stats import Stats

__all__ = ["ClientCore"]

log = logging.getLogger("flagsvc_sdk")
_hash = mmh3.hash
_INVALID = ErrorCode.INVALID_CONTEXT
_BOOLEAN, _STRING, _INTEGER = ValueType.BOOLEAN, ValueType.STRING, ValueType.INTEGER
_FLOAT, _OBJECT = ValueType.FLOAT, ValueType.OBJECT
V = TypeVar("V")


def _value_getter(value_type: ValueType, name: str, doc: str) -> Callable[..., Any]:
    """The typed getter of ``value_type`` (``get_string`` …): ``is_enabled``'s shape.

    A plain dict context with a plain key on a set-shape flag (``Plan.kind``) is
    answered right here from the plan's prebuilt values; anything else goes to
    ``ClientCore._value`` (counted once, here), an unknown flag or another type to
    ``_evaluate``, which says which error it is.
    """

    def getter(self: ClientCore, key: str, context: Context, default: Any) -> Any:
        try:
            plan = self._plans[key]
        except Exception:  # no such flag (or not yet, or forked): the slow path says which
            return self._evaluate(key, context, default, value_type).value
        if plan.value_type is not value_type:
            return self._evaluate(key, context, default, value_type).value
        plan.tally.count += 1.0  # a float, the cheapest exact count (checks.Tally)
        try:  # nothing below raises once a count or a value is decided
            if type(context) is plan.served:  # dict: a set shape serving three values
                user_key = context["key"]
                if type(user_key) is str and user_key and user_key.isascii():  # plain key
                    if context.get(plan.attribute) in plan.values:
                        tally = plan.tally
                        tally.cohort += 1.0  # on through the cohort: early-access reach
                        if tally.cohort <= tally.note_until:  # the first users of the batch
                            tally.adopters[user_key] = None  # hashed later, off this path
                        return plan.hit
                    in_ramp = _hash(plan.prefix + user_key, 0, False) % BUCKETS < plan.cutoff
                    return plan.on if in_ramp else plan.missed
        except Exception:  # no "key" (keyless), an unhashable value: the plan decides
            pass
        return self._value(plan, context, default)

    getter.__name__ = getter.__qualname__ = name
    getter.__doc__ = doc
    return getter


def _details_getter(value_type: ValueType, name: str, of: str) -> Callable[..., Any]:
    """The ``*_details`` getter of ``value_type``: ``of`` with the variation, reason, error
    code and metadata. The flag's shared answer; the set shape inline (its prebuilt
    answers serve values, so the default changes nothing)."""

    def getter(self: ClientCore, key: str, context: Context, default: Any) -> Evaluation[Any]:
        try:
            plan = self._plans[key]
        except Exception:  # no such flag (or not yet, or forked): the slow path says which
            return self._evaluate(key, context, default, value_type)
        if plan.value_type is not value_type:
            return self._evaluate(key, context, default, value_type)
        plan.tally.count += 1.0
        try:  # the set shape inline, as in the value getters
            if type(context) is plan.served:  # its answers all serve a value: no default
                user_key = context["key"]
                if type(user_key) is str and user_key and user_key.isascii():  # plain key
                    if context.get(plan.attribute) in plan.values:
                        tally = plan.tally
                        tally.cohort += 1.0
                        if tally.cohort <= tally.note_until:
                            tally.adopters[user_key] = None
                        return plan.hit_details
                    in_ramp = _hash(plan.prefix + user_key, 0, False) % BUCKETS < plan.cutoff
                    return plan.on_details if in_ramp else plan.missed_details
        except Exception:  # no "key" (keyless), an unhashable value: the plan decides
            pass
        return self._details(plan, context, default)

    getter.__name__ = getter.__qualname__ = name
    getter.__doc__ = f":meth:`{of}` with the variation, reason, error code and metadata."
    return getter


Parked = tuple[Loaded | None, Mapping[str, Plan]]
"""A forked child's inherited snapshot and plans, set aside until first use."""


class ClientCore(Listeners):
    """Evaluate flags of one environment locally, kept current by stream and polling.

    The options of both clients:

    :param url: the service's base URL, e.g. ``https://flags.example.com``.
    :param sdk_key: an SDK key of the environment (``flagsvc create-sdk-key``).
    :param bootstrap_path: a snapshot JSON file shipped with the app, used at start when
        nothing newer is at hand, so the app answers even if the service is down.
    :param cache_path: where the last snapshot the service sent is kept (written atomically
        after every download, read at start).
    :param stream: listen to ``/sdk/v1/stream``; ``False`` polls only.
    :param poll_interval: seconds between polls while there is no stream.
    :param timeout: seconds for each HTTP request (connect, read, write).
    :param send_metrics: send evaluation counts every ``metrics_interval`` seconds.
    :param transport: an httpx-style transport (``httpx.MockTransport`` in tests).
    :param on_change: called with a :class:`Change` after each new snapshot.
    :param on_status: called with a :class:`StatusChange` at every :attr:`status` move.
    :raise ConfigurationError: for a malformed ``url``, an empty ``sdk_key`` or a
        non-positive interval.
    """

    _parked: Parked | None = None  # set in a forked child until first use (see _fork.py)

    def __init__(  # noqa: PLR0913 - keyword-only options, as in other flag SDKs
        self,
        url: str,
        sdk_key: str,
        *,
        bootstrap_path: str | PathLike[str] | None = None,
        cache_path: str | PathLike[str] | None = None,
        stream: bool = True,
        poll_interval: float = 30.0,
        timeout: float = 5.0,
        send_metrics: bool = True,
        metrics_interval: float = 60.0,
        transport: Transport | None = None,
        on_change: ChangeListener | None = None,
        on_status: StatusListener | None = None,
    ) -> None:
        _check_options(url, sdk_key, poll_interval, timeout, metrics_interval)
        self.stats = Stats()
        self._current: Loaded | None = None
        self._counters = Counters()
        self._plans: Mapping[str, Plan] = {}  # is_enabled reads this, evaluate _current
        self._listeners: list[ChangeListener] = [on_change] if on_change else []
        self._status_listeners: list[StatusListener] = [on_status] if on_status else []
        self._board = StatusBoard(self._notify_status)
        self._lock = threading.Lock()  # serialises installs (the updater vs. start-up)
        self._ready = threading.Event()
        self._closed = False
        self._warned_invalid = False
        self._pid = os.getpid()
        self._settings = Settings(
            url,
            sdk_key,
            timeout,
            transport,
            stream,
            poll_interval,
            send_metrics,
            metrics_interval,
        )
        self._cache_path = Path(cache_path) if cache_path is not None else None
        self._load_files(self._cache_path, Path(bootstrap_path) if bootstrap_path else None)
        self._background = self._start_background()
        track(self)

    # --- evaluation: the hot path; never raises -------------------------------------

    def is_enabled(self, key: str, context: Context, default: bool = False) -> bool:
        """Return whether flag ``key`` is on for ``context``; ``default`` when the flag is
        unknown or retired, the context invalid (not a mapping whose ``"key"`` is a
        non-empty string or an integer), no snapshot is held yet, or anything else fails."""
        try:  # the set shape runs right here: a call to a check would add a tenth
            plan = self._plans[key]
            plan.tally.count += 1.0  # a float, the cheapest exact count (checks.Tally)
            if type(context) is plan.kind:  # dict for a set shape with a rollout, else None
                user_key = context["key"]
                if type(user_key) is str and user_key and user_key.isascii():  # plain key
                    if context.get(plan.attribute) in plan.values:
                        tally = plan.tally
                        tally.cohort += 1.0  # on through the cohort: early-access reach
                        if tally.cohort <= tally.note_until:  # the first users of the batch
                            tally.adopters[user_key] = None  # hashed later, off this path
                        return True
                    return _hash(plan.prefix + user_key, 0, False) % BUCKETS < plan.cutoff
            return self._decide(plan, context, default)
        except Exception:  # no such flag, no "key", an unhashable value: see _fallback
            return self._fallback(key, context, default)

    def _decide(self, plan: Plan, context: Context, default: bool) -> bool:
        """``is_enabled`` by the flag's check (already counted): the context is made
        canonical first (``engine.canonical_context``), so the check sees a valid one."""
        try:
            user_key = context.get("key") if type(context) is dict else None
            if type(user_key) is not str or not user_key or not user_key.isascii():
                canonical = canonical_context(context)
                if canonical is None:
                    return self._keyless(plan, context, default)
                context, user_key = canonical, str(canonical["key"])
            return plan.check(context, user_key)
        except Exception:  # the contract: never raise (a mapping whose get raises)
            return default

    def _keyless(self, plan: Plan, context: Context, default: bool) -> bool:
        """A context without a valid user key: keyless ones evaluate where no key is
        needed (the engine decides); invalid ones answer the default (and are logged)."""
        if not is_keyless(context):
            self._invalid_context(context)
            return default
        evaluation = plan.resolve(context)
        return default if evaluation.error_code is not None else evaluation.enabled

    def _fallback(self, key: str, context: Context, default: bool) -> bool:
        """Where the inline path raised: an unknown flag (not counted), a context without
        ``"key"`` or with an unhashable value (counted already)."""
        try:
            plan = self._plans.get(key)
        except TypeError:  # an unhashable flag key
            return default
        if plan is None and self._resume_after_fork():  # first use in a forked child
            return self.is_enabled(key, context, default)
        return default if plan is None else self._decide(plan, context, default)

    def evaluate(self, key: str, context: Context, default: object = None) -> Evaluation[Any]:
        """Evaluate flag ``key`` for ``context``: variation, value, reason, metadata.

        ``value`` follows the caller's-default rule of :mod:`flagsvc_sdk.evaluation`: the
        value of the variation served, ``default`` where none is (an error, or off
        without an off variation). Untyped: the typed getters below check the type.
        """
        return self._evaluate(key, context, default, None)

    # --- typed getters: the flag's declared type or the default, never raise ---------
    # Each getter is made by ``_value_getter`` / ``_details_getter`` (below the class):
    # one body runs the set shape inline like ``is_enabled`` (a call per getter, not
    # three), and the five types share it. The stubs give type checkers the signatures.

    if TYPE_CHECKING:

        def get_boolean(self, key: str, context: Context, default: bool) -> bool: ...
        def get_string(self, key: str, context: Context, default: str) -> str: ...
        def get_integer(self, key: str, context: Context, default: int) -> int: ...
        def get_float(self, key: str, context: Context, default: float) -> float: ...
        def get_object(self, key: str, context: Context, default: JsonObject) -> JsonObject: ...
        def get_boolean_details(
            self, key: str, context: Context, default: bool
        ) -> Evaluation[bool]: ...
        def get_string_details(
            self, key: str, context: Context, default: str
        ) -> Evaluation[str]: ...
        def get_integer_details(
            self, key: str, context: Context, default: int
        ) -> Evaluation[int]: ...
        def get_float_details(
            self, key: str, context: Context, default: float
        ) -> Evaluation[float]: ...
        def get_object_details(
            self, key: str, context: Context, default: JsonObject
        ) -> Evaluation[JsonObject]: ...

    else:
        get_boolean = _value_getter(
            _BOOLEAN,
            "get_boolean",
            """The boolean flag's value for ``context``; ``default`` on any error, for a
            flag of another type too (``get_boolean_details`` says which).""",
        )
        get_string = _value_getter(
            _STRING,
            "get_string",
            "The string flag's value for ``context``; ``default`` on any error.",
        )
        get_integer = _value_getter(
            _INTEGER,
            "get_integer",
            "The integer flag's value for ``context``; ``default`` on any error.",
        )
        get_float = _value_getter(
            _FLOAT, "get_float", "The float flag's value for ``context``; ``default`` on any error."
        )
        get_object = _value_getter(
            _OBJECT,
            "get_object",
            """The object flag's value (a JSON object or array; treat it as read-only);
            ``default`` on any error.""",
        )
        get_boolean_details = _details_getter(_BOOLEAN, "get_boolean_details", "get_boolean")
        get_string_details = _details_getter(_STRING, "get_string_details", "get_string")
        get_integer_details = _details_getter(_INTEGER, "get_integer_details", "get_integer")
        get_float_details = _details_getter(_FLOAT, "get_float_details", "get_float")
        get_object_details = _details_getter(_OBJECT, "get_object_details", "get_object")

    def _value(self, plan: Plan, context: Context, default: V) -> V:
        """A typed getter past the inline set shape (the plan's type is the one asked,
        the evaluation counted): the plan's compiled value, or ``default``."""
        try:
            value = plan.value(context)
            if value is not None:
                return cast(V, value)  # the plan's type is value_type: so is its value
            if plan.resolve(context).error_code is _INVALID:  # (not counted again)
                self._invalid_context(context)
        except Exception:  # the contract: never raise
            pass
        return default

    def _details(self, plan: Plan, context: Context, default: object) -> Evaluation[Any]:
        """A ``*_details`` getter's answer (the plan's type is the one asked, the
        evaluation counted): the shared answer, with the caller's default applied."""
        try:
            evaluation = plan.resolve(context)  # one path; the default is applied after
            if evaluation.error_code is _INVALID:
                self._invalid_context(context)
            return evaluation if default is None else with_default(evaluation, default)
        except Exception:  # the contract: never raise
            current = self._current
            return general_error(default, None if current is None else current.version)

    def _evaluate(
        self, key: str, context: Context, default: Any, value_type: ValueType | None
    ) -> Evaluation[Any]:
        current = self._current
        if current is None:
            current = self._held_after_fork()
            if current is None:
                return not_ready(default)
        try:
            plan = current.plans.get(key)
            if plan is None:
                return with_default(current.answers.of(FLAG_NOT_FOUND), default)
            plan.tally.count += 1.0
            evaluation = plan.resolve(context)  # one path; the default is applied after
            if evaluation.error_code is _INVALID:
                self._invalid_context(context)
            if value_type is not None and plan.value_type is not value_type:
                return type_mismatch(evaluation, default)
            return evaluation if default is None else with_default(evaluation, default)
        except Exception:  # the contract: never raise
            return general_error(default, current.version)

    def all_flags(self, context: Context) -> dict[str, Evaluation[Any]]:
        """Evaluate every flag of the snapshot for ``context`` (defaults: ``None``)."""
        current = self._current
        if current is None:
            current = self._held_after_fork()
            if current is None:
                return {}
        try:
            answers = {}
            for flag_key, plan in current.plans.items():
                plan.tally.count += 1.0
                answers[flag_key] = plan.resolve(context)
            return answers
        except Exception:
            log.exception("flagsvc: all_flags failed")
            return {}

    @property
    def status(self) -> Status:
        """How far the answers can be trusted now (:class:`Status`)."""
        self._resume_after_fork()
        return self._board.status

    @property
    def version(self) -> int | None:
        """The version of the snapshot in use (``None`` before the first one)."""
        current = self._current
        if current is None:
            current = self._held_after_fork()
        return None if current is None else current.version

    # --- opt-in cohorts and lifecycle: what each client builds its calls from ----------

    def _membership_body(
        self, path: str, cohort: str, context: Context
    ) -> dict[str, object] | None:
        """The body of an enroll/leave request, or ``None`` (logged) when none may be sent."""
        self._resume_after_fork()  # never on the parent's connections
        if self._closed:
            log.warning("flagsvc: %s on a closed client", path)
            return None
        if self._board.status is Status.FATAL:
            log.warning("flagsvc: %s skipped: the service refuses the SDK key", path)
            return None
        if not isinstance(cohort, str) or not cohort or not isinstance(context, Mapping):
            log.warning("flagsvc: %s needs a cohort key and a context mapping", path)
            return None
        return {"cohort": cohort, "context": dict(context)}

    def _membership_done(self, ok: bool) -> bool:
        if ok:
            self._background.updater.poke()  # fetch the new membership without waiting
        return ok

    def _fetch_without_threads(self, timeout: float) -> bool:
        """Where no thread of ours may run (a uWSGI master, ``_fork.py``): fetch the
        snapshot once on the caller's thread, within the request timeout; whether one is
        held. The master's workers inherit it, and follow changes by their own threads."""
        if not self._closed and timeout > 0:
            self._background.updater.refresh()
        return self._current is not None

    def _wait_ready(self, timeout: float) -> bool:
        """Block until the first answer (see ``Client.wait_until_ready``)."""
        self._resume_after_fork()
        if not self._background.started:  # a uWSGI master: fetch here (see _fork.py)
            return self._fetch_without_threads(timeout)
        self._ready.wait(max(timeout, 0.0))
        return self._current is not None

    def _stop(self, timeout: float) -> bool:
        """Stop background work within ``timeout`` seconds; ``False`` if already closed."""
        if self._closed:
            return False
        self._closed = True
        if self._unpark() is None:  # (a forked child that never used the client: what
            self._background.stop(timeout)  # runs belongs to the parent; nothing to stop)
        return True

    def postfork(self) -> None:
        """Restart background work in a forked child now (new connections and threads).

        Not needed after ``os.fork()`` (gunicorn, ``multiprocessing``, Celery prefork):
        the client notices the fork and restarts on its first use in the child. Call it
        where a server forks without ``os.fork()`` (uWSGI's ``@postfork``), or to start
        the child's stream before its first request. Harmless anywhere else.
        """
        if self._parked is None and os.getpid() != self._pid:  # forked without the hook
            self._park_after_fork()
        self._resume_after_fork()

    # --- internals: fork --------------------------------------------------------------

    def _park_after_fork(self) -> None:
        """In a forked child, before anything else runs (``_fork.py``): set aside the
        snapshot and plans so that first use takes the slow path, which resumes. The
        parent's threads do not exist here and its connections are not ours: touch none."""
        if "_parked" in self.__dict__:  # parked already (uWSGI may call twice)
            return
        self._parked = (self._current, self._plans)
        self._current, self._plans = None, {}

    def _unpark(self) -> Parked | None:
        """Take the parked state back (one thread wins: the others get ``None``)."""
        # dict.pop is one C call, atomic under the GIL; the class attribute answers None after
        parked: Parked | None = self.__dict__.pop("_parked", None)
        if parked is not None:
            self._current, self._plans = parked
        return parked

    def _resume_after_fork(self) -> bool:
        """First use in a forked child: fresh connections and threads; ``True`` if so."""
        if self._parked is None or self._unpark() is None:
            return False
        self._counters.forget()  # the parent reports what was counted before the fork
        parent, self._pid = self._pid, os.getpid()
        self._lock = threading.Lock()  # the parent's may have been held at the fork
        self._board.after_fork()
        ready, self._ready = self._ready, threading.Event()
        if ready.is_set():
            self._ready.set()
        if not self._closed:
            self._background = self._start_background()
        log.info(
            "flagsvc: process %s forked from %s; the client restarted its updater and "
            "metrics threads here, on new connections",
            self._pid,
            parent,
        )
        return True

    def _held_after_fork(self) -> Loaded | None:
        """``_current`` where the fast paths found none: resume a forked child first."""
        self._resume_after_fork()
        return self._current

    # --- internals: start-up, installs, metrics -----------------------------------------

    def _start_background(self) -> Background:
        hooks = Hooks(
            lambda: self._current, self._install_download, self._fresh, self._failed, self._refused
        )
        background = Background(self._settings, hooks, self._counters.take, self.stats)
        if uwsgi_without_threads():
            log.warning(
                "flagsvc: uWSGI runs without enable-threads: the client's updater cannot "
                "run and its snapshot will not follow changes; set enable-threads = true"
            )
        if in_uwsgi_master():  # threads here could hang the workers (see _fork.py)
            log.info("flagsvc: uWSGI master: each worker starts its own updater after the fork")
        else:
            background.start()
        return background

    def _load_files(self, cache: Path | None, bootstrap: Path | None) -> None:
        """Install the newest valid file snapshot; the cache wins a tie (it came later)."""
        candidates = []
        for source, path in (("cache", cache), ("bootstrap", bootstrap)):
            if path is None:
                continue
            try:
                snapshot = read_snapshot_file(path, source, expected=source == "bootstrap")
            except FetchError as exc:
                self.stats.snapshots_rejected += 1
                log.warning("flagsvc: %s; ignoring it", exc)
                continue
            if snapshot is not None:
                candidates.append(self._compile(snapshot, source, None))
        if candidates:
            self._swap(max(candidates, key=lambda loaded: loaded.version))
            self._board.loaded_from_file()

    def _install_download(self, fetched: Fetched) -> None:
        """Swap in a download (a snapshot, or a patch to the one held) and save it;
        refuse a corrupt one and keep the old.

        :raise PatchRefusedError: for a patch that does not apply (the updater then fetches
            the full snapshot).
        """
        assert fetched.raw is not None  # the updater installs only 200s
        try:
            doc = parse_document(fetched.raw, "service")
            patched = is_patch_document(doc)
            snapshot = self._patched(doc) if patched else compile_document(doc, "service")
        except FetchError:
            self.stats.snapshots_rejected += 1
            raise
        loaded = self._compile(snapshot, "service", fetched.etag, fetched.content_hash)
        self._swap(loaded)
        if self._cache_path is not None:
            raw = json.dumps(dump_snapshot(snapshot)).encode() if patched else fetched.raw
            try:
                write_atomic(self._cache_path, raw)
            except OSError as exc:
                log.warning("flagsvc: cannot write cache %s: %s", self._cache_path, exc)

    def _patched(self, doc: Mapping[str, object]) -> Snapshot:
        """The snapshot held with a patch answer applied (strictly: see engine.patches)."""
        held = self._current
        if held is None or held.patch_base is None:
            raise PatchRefusedError("service: a patch, but no snapshot from the service is held")
        try:
            snapshot = apply_patches(held.snapshot, doc)
        except EngineError as exc:
            raise PatchRefusedError(f"service: patch refused: {exc}") from exc
        self.stats.patches_applied += 1
        return snapshot

    def _compile(
        self, snapshot: Snapshot, source: str, etag: str | None, content_hash: str | None = None
    ) -> Loaded:
        answers = Answers(snapshot.version, cached=source != "service")
        plans = compile_plans(snapshot, self._counters, answers)
        return Loaded(snapshot, plans, answers, source, etag, content_hash)

    def _invalid_context(self, context: object) -> None:
        """Warn once per client that product code passes invalid contexts (then debug)."""
        level = logging.DEBUG if self._warned_invalid else logging.WARNING
        self._warned_invalid = True
        if log.isEnabledFor(level):
            log.log(
                level,
                "flagsvc: invalid context (%s); answering the caller's default. "
                'A context is a mapping whose "key" is a non-empty string or an integer; '
                "further invalid contexts are logged at debug level",
                _describe(context),
            )

    def _fresh(self) -> None:
        current = self._current
        if current is not None and current.source != "service":  # a file the service
            # confirmed (304): its answers are no longer CACHED, so compile them anew
            with self._lock:
                if self._current is current:
                    relabelled = self._compile(current.snapshot, "service", current.etag)
                    self._current, self._plans = relabelled, relabelled.plans
        self._board.fresh()
        self._ready.set()

    def _failed(self, message: str) -> None:
        holding = self._current is not None
        self._board.failed(message, holding=holding)
        if holding:
            self._ready.set()  # the service was tried; the snapshot held answers

    def _refused(self, message: str) -> None:
        self._board.refused(message)
        self._ready.set()  # waiting longer cannot help

    def _swap(self, loaded: Loaded) -> None:
        with self._lock:
            previous, self._current = self._current, loaded  # the atomic swap readers see
            self._plans = loaded.plans  # (is_enabled needs no snapshot, only its plans)
        self.stats.snapshots_loaded += 1
        changed = _flags_changed(previous, loaded)
        if previous is None or changed:
            prior = None if previous is None else previous.version
            self._notify_change(Change(loaded.version, prior, changed, loaded.source))


def _describe(context: object) -> str:
    """What is wrong with an invalid context, without its values (they may be personal)."""
    if not isinstance(context, Mapping):
        return f"a {type(context).__name__}, not a mapping"
    try:
        key = context.get("key")
    except Exception:
        return "its get() raised"
    if key is None:
        return 'no "key"'
    if isinstance(key, str):
        return '"key" is empty' if not key else '"key" is not valid Unicode (a lone surrogate)'
    return f'"key" is a {type(key).__name__}'


def _flags_changed(previous: Loaded | None, loaded: Loaded) -> tuple[str, ...]:
    new = loaded.snapshot.flags
    if previous is None:
        return tuple(new)
    old = previous.snapshot.flags
    keys = list(new) + [key for key in old if key not in new]
    return tuple(key for key in keys if old.get(key) != new.get(key))


def _is_http_url(url: object) -> bool:
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else None
    except httpx.InvalidURL:
        return False
    return (
        parsed is not None
        and parsed.scheme in ("http", "https")
        and bool(parsed.host)
        and not any(char.isspace() or char == "%" for char in parsed.host)
        and 0 < (parsed.port or 80) < 65536
    )


def _check_options(
    url: str, sdk_key: str, poll_interval: float, timeout: float, metrics_interval: float
) -> None:
    """Refuse arguments that can only be mistakes, at construction, with the reason."""
    if not _is_http_url(url):
        raise ConfigurationError(f"url must be an http(s) URL with a host, got {url!r}")
    if not isinstance(sdk_key, str) or not sdk_key.strip():
        raise ConfigurationError("sdk_key must be a non-empty string")
    for name, value in (
        ("poll_interval", poll_interval),
        ("timeout", timeout),
        ("metrics_interval", metrics_interval),
    ):
        if not isinstance(value, int | float) or not 0 < value < math.inf:
            raise ConfigurationError(f"{name} must be a positive number of seconds")
