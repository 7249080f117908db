"""The in-process rate limiter: a sliding window, and memory that follows active users."""

from __future__ import annotations

from hubbub.engine.cluster.local import InProcessRateLimiter

WINDOW = 60.0


class Clock:
    """Time as the test says: the limiter's only notion of it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_window_slides_and_refused_sends_are_not_counted() -> None:
    clock = Clock()
    limiter = InProcessRateLimiter({"direct": 2, "group": 1}, WINDOW, clock)
    assert [limiter.allow_now(1, "direct") for _ in range(3)] == [True, True, False]
    assert limiter.allow_now(1, "group") and not limiter.allow_now(1, "group")
    clock.now = WINDOW / 2
    assert not limiter.allow_now(1, "direct")
    clock.now = WINDOW  # The first two slid out; the refused ones were never counted.
    assert [limiter.allow_now(1, "direct") for _ in range(3)] == [True, True, False]


def test_idle_users_are_forgotten_without_a_task() -> None:
    clock = Clock()
    limiter = InProcessRateLimiter({"direct": 5, "group": 5}, WINDOW, clock)
    for user in range(100_000):
        limiter.allow_now(user, "direct")
    # All 100,000 are in the window still: nothing to forget yet.
    assert len(limiter) == 100_000

    clock.now = WINDOW + 1
    active = range(1_000_000, 1_000_010)
    # However the sweeps fell, one comes within as many calls as there were logs.
    for call in range(100_000):
        limiter.allow_now(active[call % len(active)], "direct")
    assert len(limiter) == len(active)
    # The active users are still limited: the sweep kept their logs.
    assert not limiter.allow_now(active[0], "direct")


def test_a_stream_of_new_users_keeps_memory_bounded_by_the_active_ones() -> None:
    clock = Clock()
    sweep_every = 1024
    limiter = InProcessRateLimiter(
        {"direct": 5, "group": 5}, WINDOW, clock, sweep_every=sweep_every
    )
    # One new user a second: at most WINDOW of them are active at any time.
    active = int(WINDOW) + 1
    largest = 0
    for user in range(100_000):
        clock.now = float(user)
        limiter.allow_now(user, "direct")
        largest = max(largest, len(limiter))
    assert largest <= 2 * active + sweep_every
