"""CPU time of starting flagsvc: a worker's boot, a whole ``flagsvc serve``, a CLI command.

    .venv/bin/python bench/boot.py [--rounds 7] [--against DIR] [--database-url URL]

Three measurements, each in fresh processes, ``--rounds`` times, medians printed:

- **worker boot**: what a gevent worker does after gunicorn's master forks it. A fresh
  interpreter imports what the master had imported before forking (``flagsvc.serving``,
  the worker class, so gevent), then the clock starts: the ``post_fork`` hook if the
  settings have one, ``monkey.patch_all()`` (``GeventWorker.patch``), ``import
  flagsvc.wsgi`` (``create_app``), the ``post_worker_init`` hook (warm-up, freeze).
  CPU time (user + system) of that process, measured inside it.
- **serve**: ``flagsvc serve`` (the CLI, exec'd gunicorn master, one gevent worker)
  from launch until ``/healthz`` answers, then SIGTERM and wait: CPU of the whole
  process tree (``resource.getrusage(RUSAGE_CHILDREN)`` before and after the wait;
  this process is the tree's subreaper, so a worker its master left behind counts too).
- **init**: ``flagsvc init`` on an already initialised database, the same way.

Baseline in the same run: ``python -c pass`` (an interpreter's start-up on this
machine right now); each figure is also printed as a multiple of it. With ``--against
DIR`` (a source tree of another revision, e.g. ``git archive main | tar -x -C DIR``)
every measurement runs for both trees in interleaved rounds (``PYTHONPATH=DIR:DIR/sdk``
puts that tree first), and the ratio this tree / that tree is printed.

Bytecode caches are written and used (``PYTHONDONTWRITEBYTECODE`` is removed from the
children's environment), as in a deployment; one untimed round warms them. The
database is a SQLite file in a temporary folder unless ``--database-url`` names one.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

FLAGSVC = [sys.executable, "-c", "from flagsvc.cli import main; main()"]

CWD = tempfile.mkdtemp(prefix="flagsvc-bench-boot-")
"""Every child runs here (``python -c`` puts its working directory first on ``sys.path``),
beside the SQLite database."""

WORKER_PROBE = r"""
import sys, time
import flagsvc.serving as serving
import gunicorn.workers.ggevent  # the master resolves worker_class before it forks
import flagsvc.gevent_worker
start = time.process_time()
hooks = serving._SETTINGS
if hooks.get("post_fork"):
    hooks["post_fork"](None, None)
from gevent import monkey
import contextlib
with getattr(flagsvc.gevent_worker, "entry_points_read_once", contextlib.nullcontext)():
    monkey.patch_all()  # as the worker's patch() does (in older trees: plainly)
import flagsvc.wsgi
class Worker:
    wsgi = flagsvc.wsgi.app
hooks["post_worker_init"](Worker())
sys.stdout.write(f"{time.process_time() - start}\n")
"""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cpu(argv: list[str], env: dict[str, str]) -> float:
    """CPU-seconds of a child process (and its own children) run to completion."""
    before = children_cpu()
    subprocess.run(
        argv, env=env, cwd=CWD, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return children_cpu() - before


def worker_cpu(env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", WORKER_PROBE],
        env=env,
        cwd=CWD,
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_cpu(env: dict[str, str]) -> float:
    """``flagsvc serve`` until /healthz answers, SIGTERM, wait: the process tree's CPU."""
    port = free_port()
    before = children_cpu()
    process = subprocess.Popen(
        [*FLAGSVC, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=CWD,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"flagsvc serve did not start (status {process.poll()})")
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    reap_orphans()
    return children_cpu() - before


def become_subreaper() -> None:
    """Orphans of our children (a worker its master did not wait for) become ours (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


PR_SET_CHILD_SUBREAPER = 36


def reap_orphans() -> None:
    """Wait for every process left to us, so that its CPU counts in RUSAGE_CHILDREN."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def environment(tree: Path | None, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLAGSVC_", "REDIS_URL"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPATH", None)
    env.update(DATABASE_URL=database_url, FLAGSVC_LOG_LEVEL="warning")
    if tree is not None:
        env["PYTHONPATH"] = f"{tree}{os.pathsep}{tree / 'sdk'}"
    return env


def where_flagsvc(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", "import flagsvc, flagsvc_sdk; print(flagsvc.__file__)"],
        env=env,
        cwd=CWD,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return str(Path(out.stdout.strip()).parent.parent)


def bare(env: dict[str, str]) -> float:
    return run_cpu([sys.executable, "-c", "pass"], env)


def init(env: dict[str, str]) -> float:
    return run_cpu([*FLAGSVC, "init"], env)


BASELINE = "python -c pass (baseline)"
MEASURES: dict[str, tuple[str, Callable[[dict[str, str]], float]]] = {
    BASELINE: ("", bare),
    "worker boot (patch, app, warm-up)": ("worker", worker_cpu),
    "serve start until /healthz + stop": ("serve", serve_cpu),
    "flagsvc init (initialised db)": ("init", init),
}

Samples = dict[tuple[str, str], list[float]]


def measure(
    trees: dict[str, dict[str, str]], only: list[str] | None, rounds: int
) -> tuple[list[str], Samples]:
    """Every measurement for every tree, in interleaved rounds, after one untimed round."""
    names = [m for m, (key, _) in MEASURES.items() if not key or not only or key in only]
    for env in trees.values():  # the database initialised, bytecode caches written
        init(env)
        for name in names:
            MEASURES[name][1](env)
    samples: Samples = {}
    for _ in range(rounds):
        for name in names:
            for tree, env in trees.items():
                samples.setdefault((name, tree), []).append(MEASURES[name][1](env))
    return names, samples


def report(names: list[str], trees: list[str], samples: Samples) -> None:
    width = max(len(n) for n in names)
    for tree in trees:
        print(f"\n{tree}")
        baseline = statistics.median(samples[(BASELINE, tree)])
        for name in names:
            values = samples[(name, tree)]
            median = statistics.median(values)
            print(
                f"  {name:<{width}}  {median:6.3f} s  [{min(values):.3f}-{max(values):.3f}]"
                f"  {median / baseline:5.1f}x baseline"
            )
    if len(trees) == 2:
        print(f"\n{trees[0]} / {trees[1]} (medians)")
        for name in names:
            ours = statistics.median(samples[(name, trees[0])])
            theirs = statistics.median(samples[(name, trees[1])])
            print(f"  {name:<{width}}  {ours:6.3f} / {theirs:6.3f} s = {ours / theirs:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--against", type=Path, help="another revision's source tree")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--only", choices=("worker", "serve", "init"), action="append")
    args = parser.parse_args()

    database_url = args.database_url or f"sqlite:///{Path(CWD) / 'flagsvc.db'}"
    trees = {"this tree": environment(None, database_url)}
    if args.against is not None:
        trees["against"] = environment(args.against.resolve(), database_url)
    for tree, env in trees.items():
        print(f"{tree}: {where_flagsvc(env)}")
    become_subreaper()
    load = os.getloadavg()[0]
    names, samples = measure(trees, args.only, args.rounds)
    print(
        f"\nCPU-seconds (user + system), median of {args.rounds} rounds [min-max]; "
        f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    report(names, list(trees), samples)


if __name__ == "__main__":
    main()
