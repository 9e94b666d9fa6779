"""Every Prometheus metric flagsvc exports, and the ``/metrics`` exposition.

One process (tests, ``flask run``, one gunicorn worker without a metrics folder) uses
prometheus_client's default registry. Several gunicorn workers share nothing, and a
scrape reaches one of them, so with ``PROMETHEUS_MULTIPROC_DIR`` set every worker
writes its values to memory-mapped files in that folder and a scrape sums the files of
all workers (``flagsvc serve`` makes a fresh folder when it starts more than one
process; the gunicorn ``child_exit`` hook retires a dead worker's live gauges). The
mode is fixed when prometheus_client is first imported, which happens in the worker,
after gevent patched the standard library.

Names follow Prometheus conventions: ``flagsvc_`` prefix, unit in the name, ``_total``
for counters. Labels are bounded: ``endpoint`` is the Flask URL rule, never the path.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram
from prometheus_client import disable_created_metrics
from prometheus_client import generate_latest
from prometheus_client import multiprocess
from prometheus_client import start_http_server

# Multiprocess mode has no ``_created`` series: keep both modes' expositions alike.
disable_created_metrics()  # type: ignore[no-untyped-call]

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Request latencies: most answers take milliseconds; reports and exports take longer.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Change delivery: the propagation target is 100 ms p99 (bench/propagation.py).
_PROPAGATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "flagsvc_http_requests_total",
    "HTTP requests answered, by method, URL rule and status (SDK streams count when they open).",
    ["method", "endpoint", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "flagsvc_http_request_duration_seconds",
    "Time to build each HTTP response, by method and URL rule (SDK streams are left out).",
    ["method", "endpoint"],
    buckets=_REQUEST_BUCKETS,
)
SDK_STREAMS_OPEN = Gauge(
    "flagsvc_sdk_streams_open",
    "SDK event streams open now (summed over the live worker processes).",
    multiprocess_mode="livesum",
)
SDK_STREAMS_LIMIT = Gauge(
    "flagsvc_sdk_streams_limit",
    "Most SDK event streams one worker process accepts before answering 503.",
    multiprocess_mode="livemax",
)
SNAPSHOT_BUILD_DURATION = Histogram(
    "flagsvc_snapshot_build_duration_seconds",
    "Time to build and encode one environment's snapshot from the database.",
    buckets=_REQUEST_BUCKETS,
)
CHANGE_PROPAGATION = Histogram(
    "flagsvc_change_propagation_seconds",
    "From the commit of a change to its SSE change event written to a stream.",
    buckets=_PROPAGATION_BUCKETS,
)
STREAM_EVENTS = Counter(
    "flagsvc_stream_events_total",
    "SSE change events written to SDK streams, by writer: the change fan-out in one pass "
    "(direct) or the stream itself (stream: the socket was busy, or cannot be written here).",
    ["writer"],
)
AUDIT_EVENTS = Counter(
    "flagsvc_audit_events_total",
    "Audit events committed, by action (rolled-back events are not counted).",
    ["action"],
)
AUDIT_HEAD_SEQ = Gauge(
    "flagsvc_audit_head_seq",
    "Sequence number of the newest audit event, read at each scrape (an anchor to keep).",
    multiprocess_mode="mostrecent",
)
AUDIT_HEAD_HASH_PREFIX = Gauge(
    "flagsvc_audit_head_hash_prefix",
    "First 13 hex digits (52 bits) of the newest audit event's hash, as a number.",
    multiprocess_mode="mostrecent",
)
SCHEDULER_RUNS = Counter(
    "flagsvc_scheduler_runs_total",
    "Scheduler passes over due launches, by outcome (ok, or failed when a launch failed).",
    ["outcome"],
)
SCHEDULER_LAUNCHES = Counter(
    "flagsvc_scheduler_launches_total",
    "Due launches the scheduler handled, by outcome (ran, skipped, failed).",
    ["outcome"],
)
WEBHOOK_ATTEMPTS = Counter(
    "flagsvc_webhook_attempts_total",
    "Webhook delivery attempts, by outcome (delivered, retry, dead; gone: webhook deleted).",
    ["outcome"],
)
AUTH_REFUSED = Counter(
    "flagsvc_auth_refused_total",
    "Authentication attempts refused by the auth-failure limit (429), by channel.",
    ["channel"],
)
SDK_EVALUATIONS = Counter(
    "flagsvc_sdk_evaluations_total",
    "Flag evaluations SDKs reported through POST /sdk/v1/metrics, by environment.",
    ["environment"],
)


def multiprocess_dir() -> str | None:
    """The shared metrics folder of a multi-process server, or None (one process)."""
    return os.environ.get(MULTIPROCESS_ENV) or None


HASH_PREFIX_DIGITS = 13  # 52 bits: a float64 holds them exactly


def export_audit_head(seq: int, hash_hex: str) -> None:
    """Show the audit head in the metrics, for an operator's monitoring to keep.

    The hash goes in as the number its first 13 hex digits make (no label per hash:
    that would be a new series on every change); ``flagsvc audit verify --head``
    takes it back as ``printf '%d:%013x' SEQ VALUE``.
    """
    AUDIT_HEAD_SEQ.set(seq)
    AUDIT_HEAD_HASH_PREFIX.set(int(hash_hex[:HASH_PREFIX_DIGITS], 16))


def exposition() -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type.

    In multiprocess mode a fresh registry reads every worker's files on each scrape
    (prometheus_client's documented pattern); otherwise the default registry, which
    also carries the process and platform collectors.
    """
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def serve_exposition(port: int, address: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` from a daemon thread: for processes without the web app
    (``flagsvc scheduler --metrics-port``)."""
    start_http_server(port, address)
