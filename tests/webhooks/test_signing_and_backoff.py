"""The pure parts of the webhook sender: signatures and back-off."""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import UTC, datetime, timedelta

from hubbub.webhooks import signature, verify
from hubbub.webhooks.backoff import BASE_DELAY, MAX_DELAY, next_attempt, retry_delay


def test_the_signature_is_the_hex_hmac_sha256_of_the_exact_body() -> None:
    body = b'{"id":"x","type":"user.online"}'
    expected = hmac.new(b"s3cret-s3cret-s3cret", body, hashlib.sha256).hexdigest()
    assert signature("s3cret-s3cret-s3cret", body) == f"sha256={expected}"
    assert verify("s3cret-s3cret-s3cret", body, f"sha256={expected}")
    assert not verify("s3cret-s3cret-s3cret", body + b" ", f"sha256={expected}")
    assert not verify("another secret here", body, f"sha256={expected}")
    assert not verify("s3cret-s3cret-s3cret", body, None)


def test_delays_double_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    for attempts in range(1, 40):
        delay = retry_delay(attempts, rng)
        ceiling = min(BASE_DELAY * 2 ** (attempts - 1), MAX_DELAY)
        assert ceiling / 2 <= delay <= ceiling
    # Jitter: the same attempt does not always wait the same.
    assert len({retry_delay(5, rng) for _ in range(20)}) > 1


def test_given_up_only_past_the_horizon() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    day = 86400.0
    just_before = created + timedelta(seconds=day - 1)
    retry = next_attempt(created, 30, just_before, day)
    assert retry is not None and retry > just_before
    assert next_attempt(created, 31, created + timedelta(seconds=day), day) is None


def test_enough_attempts_fit_in_a_day() -> None:
    """With the cap, a day of retries is well over a hundred attempts, never a handful."""
    rng = random.Random(1)
    created = now = datetime(2026, 1, 1, tzinfo=UTC)
    attempts = 0
    while (retry := next_attempt(created, attempts + 1, now, 86400.0, rng)) is not None:
        attempts += 1
        now = retry
    assert now - created >= timedelta(days=1)
    assert attempts > 100
