"""Early-adopter evidence from SDK metrics: distinct hashed users (HyperLogLog, in Redis or,
without it, in the database) and early-access evaluations, per flag and environment."""

from __future__ import annotations

import hashlib

import pytest

from flagsvc.domain.roles import Role
from flagsvc.services import early_adopters
from flagsvc.services import environments
from flagsvc.services import sdk_metrics
from flagsvc.storage.models import Flag
from tests.services.use_cases import new_flag


def _hashes(users):
    return tuple(hashlib.blake2b(u.encode(), digest_size=8).hexdigest() for u in users)


def _report(database, clock, sketches, flag, users, cohort=None, environment="production"):
    entry = sdk_metrics.EvaluationCount(
        flag, 2 * len(users) or 1, clock(), len(users) if cohort is None else cohort, _hashes(users)
    )
    with database.write() as session:
        sdk_metrics.record_evaluations(session, environment, [entry], clock(), sketches)


def _evidence(database, sketches, flag, environment="production"):
    with database.read() as session:
        env = environments.get_environment(session, environment)
        flag_id = session.query(Flag.id).filter(Flag.key == flag).scalar()
        return early_adopters.evidence(session, env.id, [flag_id], sketches)[flag_id]


@pytest.fixture(params=["database", "redis"])
def sketches(request):
    if request.param == "database":
        return early_adopters.Sketches()
    return early_adopters.Sketches(request.getfixturevalue("redis_url"))


@pytest.fixture
def flags(database, change_by, key_result_id):
    for key in ("checkout", "search"):
        new_flag(database, change_by(Role.ENGINEER), key, key_result_id)


def test_evidence__same_users_in_many_batches__counted_once(database, clock, sketches, flags):
    _report(database, clock, sketches, "checkout", [f"u{i}" for i in range(30)])
    _report(database, clock, sketches, "checkout", [f"u{i}" for i in range(20, 50)])
    _report(database, clock, sketches, "checkout", [], cohort=0)  # no cohort answers at all
    found = _evidence(database, sketches, "checkout")
    assert found == early_adopters.Evidence(50, 60)  # small counts: exact


def test_evidence__per_flag_and_environment(database, clock, sketches, flags):
    _report(database, clock, sketches, "checkout", ["a", "b"], environment="staging")
    _report(database, clock, sketches, "search", ["a"])
    assert _evidence(database, sketches, "checkout", "staging") == early_adopters.Evidence(2, 2)
    assert _evidence(database, sketches, "checkout") == early_adopters.NONE
    assert _evidence(database, sketches, "search") == early_adopters.Evidence(1, 1)


def test_evidence__many_users__within_three_standard_errors(database, clock, sketches, flags):
    users = [f"user-{i}" for i in range(20_000)]
    for start in range(0, len(users), 5_000):
        _report(database, clock, sketches, "checkout", users[start : start + 5_000])
    seen = _evidence(database, sketches, "checkout").early_adopters
    assert abs(seen - 20_000) <= 3 * early_adopters.STANDARD_ERROR * 20_000


def test_sketches__redis_down__batch_still_recorded_without_adopters(database, clock, flags):
    down = early_adopters.Sketches("redis://127.0.0.1:1/0")
    _report(database, clock, down, "checkout", ["a", "b"])
    assert _evidence(database, down, "checkout") == early_adopters.Evidence(0, 2)
