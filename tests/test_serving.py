"""What ``flagsvc.serving`` does to each gunicorn worker once it has booted (real gunicorn)."""

from __future__ import annotations

import gc

import pytest

from flagsvc.serving import FULL_COLLECTION_AFTER
from tests import serving_probe


@pytest.mark.parametrize("worker_class", ["default", "gthread"])
def test_worker_booted__the_app_loaded_is_out_of_the_collectors_reach(worker_class):
    args = () if worker_class == "default" else ("--worker-class", "gthread")
    with serving_probe.running(*args) as port:
        seen = serving_probe.get(port, "/gc")
    assert seen["frozen"] > 1000  # gunicorn, gevent and the app's modules
    assert seen["marker_reachable"] is False  # made at import: frozen with the rest


@pytest.mark.parametrize("worker_class", ["default", "gthread"])
def test_worker_booted__full_collections_wait_for_ten_times_the_middle_ones(worker_class):
    args = () if worker_class == "default" else ("--worker-class", "gthread")
    with serving_probe.running(*args) as port:
        seen = serving_probe.get(port, "/gc")
    young, middle, _ = gc.get_threshold()  # CPython's, in this process
    assert seen["threshold"] == [young, middle, FULL_COLLECTION_AFTER]
    assert 10 * gc.get_threshold()[2] == FULL_COLLECTION_AFTER


@pytest.mark.parametrize("worker_class", ["default", "gthread"])
def test_worker_forked__no_collection_while_the_app_loads__collecting_again_once_booted(
    worker_class,
):
    args = () if worker_class == "default" else ("--worker-class", "gthread")
    with serving_probe.running(*args) as port:
        seen = serving_probe.get(port, "/gc")
    assert seen["collecting_at_import"] is False
    assert seen["collecting"] is True
