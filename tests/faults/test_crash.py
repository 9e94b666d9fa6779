"""A service instance killed mid-write (SIGKILL, no goodbye): nothing acknowledged is lost,
nothing is half-written, and the audit chain still verifies after the restart."""

from __future__ import annotations

import time

import pytest

from tests.live import start_service
from tests.live_helpers import admin_client
from tests.live_helpers import create_cohort
from tests.live_helpers import create_flag
from tests.live_helpers import wait_for_all

from .writers import AdminWriter
from .writers import Stored
from .writers import check_all_or_nothing
from .writers import check_state_matches_audit

pytestmark = pytest.mark.faults

COHORT = "crash-importers"
WRITERS = 4


def test_instance_killed_mid_write__acknowledged_writes_kept_and_chain_verifies(
    fresh_database: str,
) -> None:
    # Given two workers taking admin writes from four threads at once
    service = start_service(fresh_database, env={"FLAGSVC_WORKERS": "2", "FLAGSVC_ACCESS_LOG": "0"})
    try:
        assert service.admin_token
        with admin_client(service) as admin:
            create_cohort(admin, COHORT)
            for n in range(WRITERS):
                create_flag(admin, f"crash-{n}", rollout_percent=50)
        writers = [
            AdminWriter(service.url, service.admin_token, f"crash-{n}", COHORT).start()
            for n in range(WRITERS)
        ]
        started = time.monotonic()
        wait_for_all(writers, lambda writer: len(writer.acknowledged()) >= 3, timeout=30)
        time.sleep(max(0.0, started + 1.0 - time.monotonic()))  # a second of writing at least
        # When the whole process group is SIGKILLed while they write
        service.kill()
        for writer in writers:
            writer.stop()
        attempts = [attempt for writer in writers for attempt in writer.attempts]
        # Then, once it is back, the audit chain verifies
        service.start()
        assert service.cli("audit", "verify").startswith("audit chain valid")
        # and every write is all-or-nothing, every acknowledged one kept
        stored = Stored.read(fresh_database, COHORT)
        counts = check_all_or_nothing(stored, attempts)
        assert counts["acknowledged"] >= WRITERS * 3, counts
        cut_off = [a for a in attempts if a.status is None]
        assert cut_off, "the kill hit no request in flight"
        assert {a.status for a in attempts} <= {200, None}, {a.status for a in attempts}
        with admin_client(service) as admin:
            check_state_matches_audit(admin, stored)
            # and the service takes writes again
            again = admin.post("/api/v1/cohorts/crash-importers/members", json={"add": ["late"]})
            assert again.status_code == 200, again.text
    finally:
        service.stop()
