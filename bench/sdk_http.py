"""SDK HTTP throughput under wrk, beside a bare Flask endpoint on the same gunicorn settings.

    .venv/bin/python bench/sdk_http.py [--duration 10] [--connections 32] [--workers 2]
                                       [--worker-class gevent|gthread]

Measures, in one run and with one gunicorn configuration (``flagsvc.serving``, gevent
unless ``--worker-class gthread``; access log off for all of them):

- ``GET /ping`` on a bare Flask app (no database, no auth): the ceiling;
- ``GET /sdk/v1/snapshot`` with a current ``If-None-Match`` (304: SDK revalidation);
- ``GET /sdk/v1/snapshot`` without it (200, the whole body);
- ``POST /sdk/v1/evaluate`` of one flag with a cohort rule at a 50 % rollout.

Each flagsvc request authenticates its SDK key (one indexed lookup) and reads the
audit head (one ``max(seq)``) and is then served from the cached snapshot. Needs
``wrk`` (``apt-get install wrk``) and PostgreSQL: ``BENCH_PG_SERVER`` (default
``postgresql://postgres@127.0.0.1:5432``), database ``flagsvc_bench_http`` is dropped
and created. The module doubles as the bare app (``sdk_http:bare_app``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from flask import Flask
from flask import jsonify

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
FLAG = "bench-flag"
BENCH_DIR = Path(__file__).resolve().parent

bare_app = Flask(__name__)


@bare_app.get("/ping")
def ping() -> object:
    """The baseline: Flask and gunicorn, nothing else."""
    return jsonify(ok=True)


def fresh_database() -> str:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS flagsvc_bench_http WITH (FORCE)")
        conn.execute("CREATE DATABASE flagsvc_bench_http")
    return f"{PG_SERVER}/flagsvc_bench_http"


def serve_bare(port: int, workers: int, worker_class: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "gunicorn", "--config", "python:flagsvc.serving"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--chdir", str(BENCH_DIR)]
    env = {**os.environ, "FLAGSVC_ACCESS_LOG": "0", "FLAGSVC_WORKER_CLASS": worker_class}
    process = subprocess.Popen([*command, "sdk_http:bare_app"], env=env, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1)
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the bare app did not start")


def set_up_flag(url: str, admin_token: str) -> str:
    """A development flag: cohort rule + 50 % rollout; returns a development SDK key."""
    import httpx

    auth = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=url, headers=auth, timeout=30) as api:
        objective = api.post(
            "/api/v1/objectives", json={"title": "B", "period": "2026-Q4", "owner": "o"}
        )
        kr = api.post(
            f"/api/v1/objectives/{objective.json()['id']}/key-results",
            json={"title": "K", "metric": "m", "baseline": 0, "target": 1, "unit": "u"},
        ).json()
        flag = {"key": FLAG, "name": "F", "flow_item": "feature", "key_result_id": kr["id"]}
        api.post("/api/v1/flags", json=flag).raise_for_status()
        _roll_out(api)
        return str(api.post("/api/v1/environments/development/sdk-keys").json()["sdk_key"])


def _roll_out(api: Any) -> None:
    """Cohort ``beta`` (plan in [beta]) on the flag, then general at 50 % in development."""
    rules = [{"attribute": "plan", "op": "in", "values": ["beta"]}]
    api.post(
        "/api/v1/cohorts", json={"key": "beta", "name": "Beta", "rules": rules}
    ).raise_for_status()
    state = f"/api/v1/flags/{FLAG}/environments/development"
    etag = api.get(state).headers["ETag"]
    api.put(
        f"{state}/cohorts", json={"cohorts": ["beta"]}, headers={"If-Match": etag}
    ).raise_for_status()
    api.post(f"{state}/stage", json={"stage": "general", "rollout_percent": 50}).raise_for_status()


def lua_script(method: str, headers: dict[str, str], body: str | None) -> str:
    lines = [f'wrk.method = "{method}"']
    lines += [f'wrk.headers["{name}"] = {json.dumps(value)}' for name, value in headers.items()]
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    handle, path = tempfile.mkstemp(suffix=".lua")
    os.write(handle, "\n".join(lines).encode())
    os.close(handle)
    return path


def wrk(url: str, script: str | None, args: argparse.Namespace) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    done = subprocess.run(
        [*command, *(["-s", script] if script else []), url],
        capture_output=True,
        text=True,
        check=True,
    )
    out = done.stdout
    if "Non-2xx or 3xx" in out:
        raise RuntimeError(f"errors under load:\n{out}")
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def scenarios(base: str, sdk_key: str) -> dict[str, tuple[str, str | None]]:
    auth = {"Authorization": f"Bearer {sdk_key}"}
    with urllib.request.urlopen(
        urllib.request.Request(f"{base}/sdk/v1/snapshot", headers=auth)
    ) as response:
        etag = response.headers["ETag"]
    body = json.dumps({"context": {"key": "user-42", "plan": "pro"}, "flags": [FLAG]})
    evaluate = {**auth, "Content-Type": "application/json"}
    return {
        "snapshot 304 (revalidate)": (
            f"{base}/sdk/v1/snapshot",
            lua_script("GET", {**auth, "If-None-Match": etag}, None),
        ),
        "snapshot 200 (full body)": (f"{base}/sdk/v1/snapshot", lua_script("GET", auth, None)),
        "evaluate one flag": (f"{base}/sdk/v1/evaluate", lua_script("POST", evaluate, body)),
    }


def measure_bare(args: argparse.Namespace) -> dict[str, float]:
    from tests.live import free_port

    port = free_port()
    bare = serve_bare(port, args.workers, args.worker_class)
    try:
        return wrk(f"http://127.0.0.1:{port}/ping", None, args)
    finally:
        bare.terminate()
        bare.wait(15)


def main() -> None:
    from tests.live import start_service

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="gevent", choices=["gevent", "gthread"])
    args = parser.parse_args()
    results = {"bare Flask GET /ping": measure_bare(args)}
    quiet = {"FLAGSVC_ACCESS_LOG": "0", "FLAGSVC_WORKER_CLASS": args.worker_class}
    workers = ("--workers", str(args.workers))
    with start_service(fresh_database(), env=quiet, serve_args=workers) as service:
        sdk_key = set_up_flag(service.url, str(service.admin_token))
        for name, (url, script) in scenarios(service.url, sdk_key).items():
            results[name] = wrk(url, script, args)
    report(results, args)


def report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    ceiling = results["bare Flask GET /ping"]["rps"]
    print(f"\nwrk -t2 -c{args.connections} -d{args.duration}s", end="; ")
    print(f"gunicorn {args.worker_class} x{args.workers} workers, access log off; PostgreSQL")
    print(f"{'':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs bare':>8}")
    for name, figures in results.items():
        ratio = figures["rps"] / ceiling
        rps, p50, p99 = figures["rps"], figures["p50"], figures["p99"]
        print(f"{name:28} {rps:9.0f} {p50:8.2f} {p99:8.2f} {ratio:7.2f}x")


if __name__ == "__main__":
    main()
