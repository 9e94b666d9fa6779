"""The wheel a user installs: built from ``sdk/``, read as PyPI shows it, installed alone.

Checks what only the built artifact can show: the metadata and the README travel in it
(the README is the project page, so its links must work away from the repository), it
holds the package and nothing of the repository, and it installs into a fresh virtual
environment without the service's dependencies (Flask, SQLAlchemy), where a client
answers from a bootstrap file produced by ``flagsvc export-snapshot`` with the service
out of reach.
"""

from __future__ import annotations

import email
import json
import re
import subprocess
import sys
import textwrap
import zipfile
from email.message import Message
from pathlib import Path

import flagsvc_sdk
import pytest

from tests.live import free_port

from .conftest import LIVE_FLAG
from .conftest import Live

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel sdk/`` as a release would build it (isolated build, no dependencies)."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), str(SDK)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = folder.glob("flagsvc_sdk-*.whl")
    return built


def _metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_string(archive.read(name).decode("utf-8"))


def test_wheel__metadata__version_license_urls_readme_and_only_its_own_needs(
    wheel: Path,
) -> None:
    metadata = _metadata(wheel)
    assert metadata["Name"] == "flagsvc-sdk"
    assert metadata["Version"] == flagsvc_sdk.__version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Requires-Python"] == ">=3.11"
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL", []))
    assert {"Homepage", "Documentation", "Changelog", "Source", "Issues"} <= set(urls)
    assert "Typing :: Typed" in metadata.get_all("Classifier", [])
    # Only httpx and mmh3, and the openfeature extra: no peer SDK, no bench extra
    requirements = metadata.get_all("Requires-Dist", [])
    requires = {re.split(r"[<>=;\s]", r, maxsplit=1)[0] for r in requirements}
    assert requires == {"httpx", "mmh3", "openfeature-sdk"}
    assert metadata.get_all("Provides-Extra") == ["openfeature"]
    # The README is the long description, as Markdown
    assert metadata["Description-Content-Type"] == "text/markdown"
    readme = (SDK / "README.md").read_text(encoding="utf-8")
    description = metadata.get_payload()
    assert isinstance(description, str) and description.strip() == readme.strip()


def test_wheel__readme__every_link_works_away_from_the_repository() -> None:
    readme = (SDK / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)]+)\)", readme)
    assert links
    assert all(link.startswith(("https://", "#")) for link in links), links


def test_wheel__contents__the_package_typed_and_licensed_nothing_else(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"flagsvc_sdk", f"flagsvc_sdk-{flagsvc_sdk.__version__}.dist-info"}
    assert {"flagsvc_sdk/py.typed", "flagsvc_sdk/engine/py.typed"} <= set(names)
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


CHECK = textwrap.dedent(
    """
    import importlib.util
    import json
    import sys

    from flagsvc_sdk import Client, __version__

    url, bootstrap, flag = sys.argv[1:]
    missing = [m for m in ("flask", "sqlalchemy", "flagsvc") if importlib.util.find_spec(m)]
    with Client(url, "fss_x", bootstrap_path=bootstrap, timeout=1.0) as client:
        details = client.evaluate(flag, {"key": "user-1"})
        answer = {
            "service_modules": missing,
            "version": __version__,
            "on": client.is_enabled(flag, {"key": "user-1"}),
            "reason": str(details.reason),
            "status": str(client.status),
            "ready": client.wait_until_ready(5),
        }
    print(json.dumps(answer))
    """
)


def test_wheel__fresh_venv_without_the_service__answers_from_an_exported_bootstrap_file(
    wheel: Path, live: Live, tmp_path: Path
) -> None:
    # Given a bootstrap file exported from the service (the README's command)
    bootstrap = tmp_path / "flags-bootstrap.json"
    live.service.cli("export-snapshot", "--environment", "staging", "--output", str(bootstrap))
    assert LIVE_FLAG in json.loads(bootstrap.read_text())["flags"]
    # And the wheel alone in a new virtual environment (its dependencies from the index)
    # (pip of this environment installs there: copying pip into it would be most of the cost)
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    install += ["-c", str(ROOT / "constraints.txt")]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True, timeout=300)
    # When a client starts there with the service out of reach
    unreachable = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [str(python), "-c", CHECK, unreachable, str(bootstrap), LIVE_FLAG],
        capture_output=True,
        timeout=60,
        check=False,
        cwd=tmp_path,  # not the repository: nothing of it on sys.path
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    answer = json.loads(done.stdout)
    # Then it answers from the file, says the answers are stale, and needs nothing else
    assert answer == {
        "service_modules": [],
        "version": flagsvc_sdk.__version__,
        "on": True,
        "reason": "CACHED",
        "status": "stale",
        "ready": True,
    }
