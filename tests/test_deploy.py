"""The shipped load balancer (``deploy/nginx.conf``) buffers request bodies.

gunicorn holds a worker connection while a client trickles its body (4,100 such
connections stopped even ``/healthz``), so the service runs behind a proxy that reads
the whole body first (README, "The load balancer"). Checked by reading the config's
directives, and with ``nginx -t`` where nginx is installed (the upstream's
``resolve``, nginx >= 1.27.3, swapped for a plain address as Debian's 1.22 needs).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "nginx.conf"
SIZE = re.compile(r"^(\d+)([kKmM]?)$")


def _blocks(text: str) -> dict[str, list[list[str]]]:
    """Directives by the block they are in (``http``, ``http/server``, …), each with its
    arguments: enough of nginx's syntax for this file (no quotes spanning ``;``)."""
    text = re.sub(r"#[^\n]*", "", text)
    found: dict[str, list[list[str]]] = {}
    path: list[str] = []
    words: list[str] = []
    for token in re.findall(r"[{};]|[^\s{};]+", text):
        if token == "{":
            path.append(words[0] if words else "?")
            words = []
        elif token == "}":
            path.pop()
        elif token == ";":
            found.setdefault("/".join(path), []).append(words)
            words = []
        else:
            words.append(token)
    return found


def _directive(blocks: dict[str, list[list[str]]], block: str, name: str) -> list[str]:
    values = [args[1:] for args in blocks.get(block, []) if args and args[0] == name]
    assert values, f"{name} is not set in {block}"
    return values[-1]


def _bytes(size: str) -> int:
    number, unit = SIZE.match(size).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 2**10, "m": 2**20}[unit.lower()]


def test_nginx_conf__buffers_whole_request_bodies_before_the_service():
    blocks = _blocks(CONFIG.read_text())
    assert _directive(blocks, "http", "proxy_request_buffering") == ["on"]
    assert _bytes(_directive(blocks, "http", "client_body_buffer_size")[0]) >= 64 * 2**10
    for timeout in ("client_body_timeout", "client_header_timeout"):
        assert _directive(blocks, "http", timeout)
    # and no server or location turns it off again
    for block, directives in blocks.items():
        for args in directives:
            assert args[:1] != ["proxy_request_buffering"] or args[1:] == ["on"], block


def test_nginx_conf__body_limit_above_the_services():
    size = _directive(_blocks(CONFIG.read_text()), "http", "client_max_body_size")[0]
    assert _bytes(size) > 16 * 2**20  # FLAGSVC_MAX_BODY_BYTES answers the JSON 413


def test_nginx_conf__nginx_accepts_it(tmp_path):
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx); the directives are checked")
    config = tmp_path / "nginx.conf"
    config.write_text(
        CONFIG.read_text().replace("server api:8000 resolve;", "server 127.0.0.1:8000;")
    )
    result = subprocess.run(
        [nginx, "-t", "-c", str(config), "-p", str(tmp_path), "-g", f"pid {tmp_path}/nginx.pid;"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
