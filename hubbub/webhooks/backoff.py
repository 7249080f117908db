"""When a failed webhook is tried again: exponential back-off with jitter, pure."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

#: The first retry comes after about this many seconds; each next one waits twice as long,
#: up to ``MAX_DELAY``.
BASE_DELAY = 1.0
MAX_DELAY = 600.0


def retry_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1 for the first): the
    doubling delay, capped, times a random factor from 0.5 to 1, so that receivers coming
    back from an outage are not hit by every sender's retries at once."""
    doubling = BASE_DELAY * 2.0 ** min(max(attempts - 1, 0), 30)
    return min(doubling, MAX_DELAY) * (0.5 + 0.5 * (rng or random).random())


def next_attempt(
    created_at: datetime,
    attempts: int,
    now: datetime,
    horizon: float,
    rng: random.Random | None = None,
) -> datetime | None:
    """When to try an event created at ``created_at`` again after its ``attempts``-th
    failure at ``now``; None to give it up. An event is given up only once an attempt
    failed at least ``horizon`` seconds after it was created."""
    if now - created_at >= timedelta(seconds=horizon):
        return None
    return now + timedelta(seconds=retry_delay(attempts, rng))
