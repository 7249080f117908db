"""What the Redis-backed parts share: the jittered back-off step."""

from __future__ import annotations

import random

from hubbub.engine.cluster.redis_guard import jittered


def test_jitter_keeps_at_least_half_the_delay_and_spreads_the_rest() -> None:
    rng = random.Random(1)
    delays = [jittered(4.0, rng) for _ in range(1000)]
    assert all(2.0 <= delay <= 4.0 for delay in delays)
    # Spread over the range, not bunched: nodes drawing these do not retry together.
    assert min(delays) < 2.2 and max(delays) > 3.8
    assert len(set(delays)) == len(delays)
