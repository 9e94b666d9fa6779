"""Bucketing: deterministic, sticky, even, monotone in the percent, independent per flag."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import mmh3
import pytest
from flagsvc_sdk.engine import BUCKETS
from flagsvc_sdk.engine import Reason
from flagsvc_sdk.engine import Snapshot
from flagsvc_sdk.engine import bucket
from flagsvc_sdk.engine import evaluate
from flagsvc_sdk.engine import threshold
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

USERS = [f"user-{i}" for i in range(100_000)]

flag_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=40)
salts = st.text(max_size=16)
user_keys = st.text(min_size=1, max_size=40)
percents = st.integers(min_value=0, max_value=BUCKETS).map(lambda buckets: buckets / 100)


def _general(
    build_snapshot: Callable[..., Snapshot], flag_doc: Callable[..., Any], **fields: Any
) -> Snapshot:
    return build_snapshot([flag_doc(stage="general", **fields)])


@given(flag_key=flag_keys, salt=salts, user_key=user_keys)
def test_bucket__any_input__in_range(flag_key: str, salt: str, user_key: str) -> None:
    assert 0 <= bucket(flag_key, salt, user_key) < BUCKETS


@given(flag_key=flag_keys, salt=salts, user_key=user_keys)
def test_bucket__same_input_twice__same_bucket(flag_key: str, salt: str, user_key: str) -> None:
    assert bucket(flag_key, salt, user_key) == bucket(flag_key, salt, user_key)


def test_bucket__formula__is_murmur3_of_utf8_joined_by_colons() -> None:
    # Given a key with non-ASCII characters, so the encoding matters
    expected = mmh3.hash("new-checkout:a1b2c3d4:Zoë".encode(), 0, signed=False) % 10_000
    # Then
    assert bucket("new-checkout", "a1b2c3d4", "Zoë") == expected


@pytest.mark.parametrize("hash_seed", ["1", "2", "random"])
def test_bucket__other_process_and_hash_seed__same_bucket(hash_seed: str) -> None:
    # Given a fresh interpreter whose built-in hash() is salted differently
    code = "from flagsvc_sdk.engine import bucket; print(bucket('new-checkout', 'a1b2c3d4', 'u-1'))"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    # When
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
    # Then
    assert int(out.stdout) == bucket("new-checkout", "a1b2c3d4", "u-1")


@settings(max_examples=5, deadline=None)
@given(flag_key=flag_keys, salt=salts)
def test_bucket__100k_users__every_decile_within_one_point_of_ten_percent(
    flag_key: str, salt: str
) -> None:
    # When
    deciles = Counter(bucket(flag_key, salt, user) * 10 // BUCKETS for user in USERS)
    # Then
    assert set(deciles) == set(range(10))
    assert all(9_000 <= count <= 11_000 for count in deciles.values()), deciles


@settings(max_examples=5, deadline=None)
@given(first=flag_keys, second=flag_keys, salt=salts)
def test_bucket__two_flags_at_50_percent__overlap_is_a_quarter(
    first: str, second: str, salt: str
) -> None:
    # Given two different flags with the same salt
    if first == second:
        second += "-other"
    # When
    both = sum(
        bucket(first, salt, user) < 5_000 and bucket(second, salt, user) < 5_000 for user in USERS
    )
    # Then: independent halves overlap on 25 % of users
    assert abs(both / len(USERS) - 0.25) <= 0.02


@pytest.mark.parametrize(
    ("percent", "expected"),
    [(0, 0), (0.01, 1), (0.29, 29), (12.5, 1250), (33.33, 3333), (99.99, 9999), (100, 10_000)],
)
def test_threshold__two_decimal_percent__whole_bucket_count(percent: float, expected: int) -> None:
    assert threshold(percent) == expected


@settings(deadline=None)
@given(
    flag_key=flag_keys,
    salt=salts,
    users=st.lists(user_keys, min_size=1, max_size=30),
    p1=percents,
    p2=percents,
)
def test_rollout__raising_the_percent__only_adds_users(
    build_snapshot: Callable[..., Snapshot],
    flag_doc: Callable[..., Any],
    flag_key: str,
    salt: str,
    users: list[str],
    p1: float,
    p2: float,
) -> None:
    # Given the same flag at a lower and a higher rollout
    low, high = sorted((p1, p2))
    before = _general(build_snapshot, flag_doc, key=flag_key, salt=salt, rollout_percent=low)
    after = _general(build_snapshot, flag_doc, key=flag_key, salt=salt, rollout_percent=high)
    for user in users:
        # When
        was_on = evaluate(before, flag_key, {"key": user}).enabled
        is_on = evaluate(after, flag_key, {"key": user}).enabled
        # Then: nobody who had it loses it
        assert is_on or not was_on


@given(flag_key=flag_keys, salt=salts, user_key=user_keys, percent=percents)
def test_rollout__any_user__on_iff_bucket_below_threshold(
    build_snapshot: Callable[..., Snapshot],
    flag_doc: Callable[..., Any],
    flag_key: str,
    salt: str,
    user_key: str,
    percent: float,
) -> None:
    # Given
    snapshot = _general(build_snapshot, flag_doc, key=flag_key, salt=salt, rollout_percent=percent)
    # When
    result = evaluate(snapshot, flag_key, {"key": user_key})
    # Then
    in_rollout = bucket(flag_key, salt, user_key) < threshold(percent)
    assert result.enabled is in_rollout
    ramp = threshold(percent) > 0  # at 0 % no ramp decides: DEFAULT
    assert result.reason is (Reason.SPLIT if ramp else Reason.DEFAULT)


def test_rollout__50_percent_of_100k_users__half_are_on(
    build_snapshot: Callable[..., Snapshot], flag_doc: Callable[..., Any]
) -> None:
    # Given
    snapshot = _general(build_snapshot, flag_doc, rollout_percent=50)
    # When
    on = sum(evaluate(snapshot, "new-checkout", {"key": user}).enabled for user in USERS)
    # Then
    assert 49_000 <= on <= 51_000
