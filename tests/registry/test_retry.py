"""Retry policy: what is retried, how long we wait, and Retry-After in both of its forms."""

from __future__ import annotations

import email.utils

import pytest

from imagekit.errors import RegistryError
from imagekit.registry.retry import RetryPolicy, parse_retry_after, retrying


def test_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("7") == 7.0
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None


def test_wait_honours_retry_after_with_a_cap_and_jitters_otherwise() -> None:
    policy = RetryPolicy(base=1.0, cap=8.0, max_retry_after=60.0)
    assert policy.wait(1, retry_after=5) == 5
    assert policy.wait(1, retry_after=3600) == 60.0
    for retry in range(1, 10):
        assert 0 <= policy.wait(retry) <= min(8.0, 2 ** (retry - 1))


def test_retrying_retries_temporary_errors_only() -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=3, base=0.01, sleep=waits.append)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RegistryError("HTTP 503", status=503, temporary=True, retry_after=2 if len(calls) == 1 else None)
        return "ok"

    assert retrying(flaky, policy) == "ok"
    assert len(calls) == 3 and waits[0] == 2 and len(waits) == 2

    def permanent() -> None:
        calls.append(1)
        raise RegistryError("HTTP 404", status=404)

    calls.clear()
    with pytest.raises(RegistryError, match="404"):
        retrying(permanent, policy)
    assert len(calls) == 1


def test_retrying_gives_up_after_the_last_attempt() -> None:
    policy = RetryPolicy(attempts=4, base=0.0, sleep=lambda _s: None)
    calls = []

    def down() -> None:
        calls.append(1)
        raise RegistryError("cannot reach", temporary=True)

    with pytest.raises(RegistryError, match="cannot reach"):
        retrying(down, policy)
    assert len(calls) == 4
