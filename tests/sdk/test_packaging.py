"""The published distribution: one version, honest metadata, nothing but its own needs."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import flagsvc_sdk
import pytest

SDK = Path(__file__).resolve().parents[2] / "sdk"


def _project() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]
    return project


def test_version__written_once__read_by_the_metadata_and_exported() -> None:
    config = tomllib.loads((SDK / "pyproject.toml").read_text())
    assert "version" not in config["project"] and config["project"]["dynamic"] == ["version"]
    dynamic = config["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "flagsvc_sdk._version.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", flagsvc_sdk.__version__)
    changelog = (SDK / "CHANGELOG.md").read_text()
    assert f"## {flagsvc_sdk.__version__} " in changelog  # every release has its entry


def test_extras__only_what_users_install__no_peer_sdks() -> None:
    extras = _project()["optional-dependencies"]
    assert extras == {"openfeature": ["openfeature-sdk>=0.8,<0.11"]}


def test_metadata__license_urls_classifiers() -> None:
    project = _project()
    assert project["license"] == "Apache-2.0" and (SDK / "LICENSE").is_file()
    assert {"Homepage", "Documentation", "Changelog", "Source"} <= set(project["urls"])  # type: ignore[arg-type]
    assert "Typing :: Typed" in project["classifiers"]  # type: ignore[operator]
    assert (SDK / "flagsvc_sdk" / "py.typed").is_file()


def test_public_surface__all_names_exist_and_none_private() -> None:
    for name in flagsvc_sdk.__all__:
        assert not name.startswith("_") and hasattr(flagsvc_sdk, name), name


def _fresh_interpreter(code: str) -> str:
    """``code`` run by a new interpreter (nothing imported yet); its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=SDK.parent
    )
    return done.stdout.strip()


def test_engine_import__alone__loads_neither_the_clients_nor_httpx() -> None:
    """The service imports only ``flagsvc_sdk.engine``: each worker's start would otherwise
    import the clients and httpx (rich and pygments with it), some 100 ms of CPU."""
    loaded = _fresh_interpreter(
        "import sys, flagsvc_sdk.engine, flagsvc_sdk\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('httpx', 'rich', 'pygments') or m in ('flagsvc_sdk.client', 'flagsvc_sdk.aio')))"
    )
    assert loaded == "[]"


def test_public_surface__every_name_is_its_module_s_object_and_star_import_gets_them() -> None:
    from flagsvc_sdk import aio
    from flagsvc_sdk import client
    from flagsvc_sdk import engine
    from flagsvc_sdk import errors
    from flagsvc_sdk import evaluation
    from flagsvc_sdk import events
    from flagsvc_sdk import protocol
    from flagsvc_sdk import stats

    modules = (aio, client, engine, errors, evaluation, events, protocol, stats)
    for name in flagsvc_sdk.__all__:
        homes = [m for m in modules if getattr(m, name, None) is getattr(flagsvc_sdk, name)]
        assert homes, name
    assert set(flagsvc_sdk.__all__) <= set(dir(flagsvc_sdk))
    star = _fresh_interpreter("from flagsvc_sdk import *\nprint(Client.__module__, AsyncClient)")
    assert star.startswith("flagsvc_sdk.client <class 'flagsvc_sdk.aio.AsyncClient'>")
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        flagsvc_sdk.Nothing  # noqa: B018
