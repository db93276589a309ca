"""Retrying what is temporary: exponential backoff with full jitter, and the registry's Retry-After.

Only a RegistryError marked `temporary` (connection errors, 5xx, 429) is retried; everything else is
raised at once. When the registry said how long to wait (Retry-After, seconds or an HTTP date), that
wait is honoured, capped so that a hostile or confused registry cannot stall us for hours.
`retrying(fn)` is the same loop for callers that must redo more than one request (re-opening a blob
stream at an offset), so the transfer code and the transport share one policy.

Imports: stdlib, imagekit.errors and imagekit.log only.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from typing import TypeVar

from imagekit.errors import RegistryError
from imagekit.log import logger
from imagekit.values import field, value

T = TypeVar("T")
log = logger("imagekit.registry")


@value
class RetryPolicy:
    """How often and how long to retry: `attempts` counts the first try; waits grow base*2^n up to cap."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def wait(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based): Retry-After if given, else jittered backoff."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return random.uniform(0, min(self.cap, self.base * 2 ** (retry - 1)))


NO_RETRY = RetryPolicy(attempts=1)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retrying(fn: Callable[[], T], policy: RetryPolicy = RetryPolicy(), *, what: str = "request") -> T:
    """Calls `fn` until it returns, retrying temporary RegistryErrors per `policy`; raises the last error."""
    attempts = max(1, policy.attempts)
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except RegistryError as err:
            if not err.temporary or attempt == attempts:
                raise
            delay = policy.wait(attempt, err.retry_after)
            log.debug("retrying %s in %.2fs (attempt %d of %d): %s", what, delay, attempt + 1, attempts, err)
            policy.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")
