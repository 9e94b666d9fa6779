"""The published distribution: one version, honest metadata, nothing but its own needs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import flagsvc_sdk

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
