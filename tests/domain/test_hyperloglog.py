"""The HyperLogLog fallback sketch: Redis's precision and estimator, in Python."""

from __future__ import annotations

import pytest

from flagsvc.domain import hyperloglog


@pytest.mark.parametrize("n", [0, 1, 2, 10, 100])
def test_count__small__exact(n):
    registers = hyperloglog.empty()
    hyperloglog.add(registers, (f"user-{i}" for i in range(n)))
    assert hyperloglog.count(registers) == n


@pytest.mark.parametrize("n", [1_000, 30_000, 120_000])
def test_count__large__within_three_standard_errors(n):
    registers = hyperloglog.empty()
    hyperloglog.add(registers, (f"user-{i}" for i in range(n)))
    assert abs(hyperloglog.count(registers) - n) <= 3 * hyperloglog.STANDARD_ERROR * n


def test_add__same_users_again__nothing_grows():
    registers = hyperloglog.empty()
    assert hyperloglog.add(registers, [f"u{i}" for i in range(500)])
    counted = hyperloglog.count(registers)
    assert not hyperloglog.add(registers, [f"u{i}" for i in range(500)])
    assert hyperloglog.count(registers) == counted == pytest.approx(500, rel=0.025)


def test_add__in_batches_in_any_order__one_count():
    one, other = hyperloglog.empty(), hyperloglog.empty()
    users = [f"u{i}" for i in range(5_000)]
    hyperloglog.add(one, users)
    hyperloglog.add(other, reversed(users[2_500:]))
    hyperloglog.add(other, users[:3_000])
    assert one == other and len(one) == hyperloglog.REGISTERS


def test_standard_error__as_redis():
    assert round(hyperloglog.STANDARD_ERROR * 100, 2) == 0.81
