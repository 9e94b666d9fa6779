"""The gunicorn hooks that set up and clean up prometheus_client's multiprocess folder."""

from __future__ import annotations

import os

from flagsvc.observability import workers


def test_prepare__one_process__plain_registry_no_folder():
    env: dict[str, str] = {}
    assert workers.prepare_multiprocess(1, env) is None
    assert env == {}


def test_prepare__two_processes__fresh_folder_removed_on_exit():
    env: dict[str, str] = {}
    folder = workers.prepare_multiprocess(2, env)
    assert folder is not None and os.path.isdir(folder) and os.listdir(folder) == []
    assert env[workers.MULTIPROCESS_ENV] == folder
    workers.remove_made_folder(env)
    assert not os.path.exists(folder)


def test_prepare__operator_folder__used_and_never_removed(tmp_path):
    folder = tmp_path / "metrics"
    env = {workers.MULTIPROCESS_ENV: str(folder)}
    assert workers.prepare_multiprocess(4, env) == str(folder)
    assert folder.is_dir()
    workers.remove_made_folder(env)
    assert folder.is_dir()


def test_restart_with_metrics_folder__folder_set__returns_without_exec(tmp_path):
    env = {workers.MULTIPROCESS_ENV: str(tmp_path)}
    workers.restart_with_metrics_folder(["never-run"], env)  # would exec (and fail) otherwise
