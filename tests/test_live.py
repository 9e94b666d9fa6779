"""The live-service harness (``tests/live.py``): which services share one ``init``."""

from __future__ import annotations

from tests.live import init_settings


def test_init_settings__only_what_init_reads():
    one = {"PATH": "/bin", "PYTEST_CURRENT_TEST": "a.py::one (setup)", "FLAGSVC_SECRET_KEY": "s"}
    other = {
        "PATH": "/usr/bin",
        "PYTEST_CURRENT_TEST": "b.py::two (call)",
        "FLAGSVC_SECRET_KEY": "s",
    }
    assert init_settings(one) == init_settings(other) == (("FLAGSVC_SECRET_KEY", "s"),)
    assert init_settings({**one, "FLAGSVC_SECRET_KEY": "t"}) != init_settings(one)
    assert init_settings({**one, "FLAGSVC_WORKERS": "4", "FLAGSVC_LOG_LEVEL": "DEBUG"}) == (
        init_settings(one)
    )
