"""The failed-login throttle's rules, against a fake clock: pure logic, no sockets."""

from __future__ import annotations

import attrs

from hubbub.http.throttle import LoginThrottle


@attrs.define
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(clock: Clock, **options: float) -> LoginThrottle:
    settings = {"username_threshold": 5, "address_threshold": 20, "base_lockout": 30.0}
    return LoginThrottle(**{**settings, **options}, clock=clock)  # type: ignore[arg-type]


def fail(limiter: LoginThrottle, times: int, username: str = "ada", address: str = "a") -> None:
    for _ in range(times):
        assert limiter.attempt(username, address) is None


def test_the_fifth_failure_locks_the_username_and_the_lock_doubles_after_each_next() -> None:
    clock = Clock()
    limiter = throttle(clock, max_lockout=100.0)
    fail(limiter, 4)
    fail(limiter, 1)  # the fifth: allowed, and it locks
    assert limiter.attempt("ada", "a") == 30
    clock.now += 29.5
    assert limiter.attempt("ada", "a") == 1  # whole seconds, never 0
    clock.now += 0.6
    fail(limiter, 1)  # the sixth, after the lock: 60 s now
    assert limiter.attempt("ada", "a") == 60
    clock.now += 60.1
    fail(limiter, 1)
    assert limiter.attempt("ada", "a") == 100  # capped at max_lockout


def test_a_refused_attempt_is_not_counted() -> None:
    clock = Clock()
    limiter = throttle(clock)
    fail(limiter, 5)
    for _ in range(50):
        assert limiter.attempt("ada", "a") == 30
    clock.now += 31
    fail(limiter, 1)
    assert limiter.attempt("ada", "a") == 60  # one more failure, not 51


def test_spellings_of_a_username_share_its_count() -> None:
    limiter = throttle(Clock())
    for name in ("ada", "ADA", "Ada", "aDa", "adA"):
        fail(limiter, 1, username=name)
    assert limiter.attempt("ada", "a") is not None


def test_a_success_forgets_the_usernames_failures_but_not_the_addresss() -> None:
    limiter = throttle(Clock(), address_threshold=8)
    fail(limiter, 4)
    limiter.succeeded("ada", "a")  # the fourth attempt was right after all
    fail(limiter, 4)  # without the reset, the first of these would have locked
    assert limiter.attempt("ada", "a") is None  # the username's fifth since the reset
    assert limiter.attempt("ada", "a") is not None
    # The address counted 9 attempts less the 1 success: 8, its threshold.
    assert limiter.attempt("bob", "a") is not None


def test_the_address_locks_across_usernames_and_other_addresses_are_free() -> None:
    limiter = throttle(Clock())
    for i in range(20):
        fail(limiter, 1, username=f"user{i}")
    assert limiter.attempt("someone", "a") == 30
    assert limiter.attempt("someone", "b") is None


def test_failures_are_forgotten_a_window_after_the_last() -> None:
    clock = Clock()
    limiter = throttle(clock, window=600.0)
    fail(limiter, 4)
    clock.now += 601
    fail(limiter, 4)
    assert limiter.attempt("ada", "a") is None  # the fifth of the new window


def test_concurrent_attempts_count_before_any_finishes() -> None:
    limiter = throttle(Clock())
    started = [limiter.attempt("ada", "a") for _ in range(100)]
    assert started[:5] == [None] * 5
    assert all(wait is not None for wait in started[5:])


def test_the_keys_remembered_are_bounded() -> None:
    limiter = throttle(Clock(), max_keys=10)
    for i in range(100):
        fail(limiter, 1, username=f"u{i}", address=f"addr{i}")
    assert len(limiter._keys) == 10
