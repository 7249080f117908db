"""RedisRateLimiter on a real Redis: one limit across nodes, a sliding window, atomic
decisions, and the in-process fallback while Redis is away."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import coredis
import pytest
import trio

from hubbub.engine.cluster.local import InProcessRateLimiter
from hubbub.engine.cluster.redis_client import RedisClient, client_for_url
from hubbub.engine.cluster.redis_rate_limit import RedisRateLimiter

WINDOW = 1.0
#: Hang guard for calls that must return within their timeout.
HANG = 5.0


@pytest.fixture
async def other_client(redis_url: str) -> AsyncIterator[RedisClient]:
    """A second connection pool, as a second node would have."""
    async with client_for_url(redis_url, connect_timeout=5) as client:
        yield client


async def test_the_limit_holds_across_nodes(
    client: coredis.Redis, other_client: coredis.Redis, prefix: str
) -> None:
    limits = {"direct": 3, "group": 2}
    node_a = RedisRateLimiter(client, dict(limits), 60, prefix=prefix)
    node_b = RedisRateLimiter(other_client, dict(limits), 60, prefix=prefix)

    assert [await node_a.allow(1, "direct"), await node_b.allow(1, "direct")] == [True, True]
    assert await node_a.allow(1, "direct")
    assert not await node_b.allow(1, "direct")
    assert not await node_a.allow(1, "direct")
    # Kinds and users are limited apart.
    assert [await node_b.allow(1, "group"), await node_a.allow(1, "group")] == [True, True]
    assert not await node_b.allow(1, "group")
    assert await node_b.allow(2, "direct")


async def test_the_window_slides_and_refused_sends_are_not_counted(
    client: coredis.Redis, prefix: str
) -> None:
    limiter = RedisRateLimiter(client, {"direct": 2, "group": 2}, WINDOW, prefix=prefix)
    assert await limiter.allow(1, "direct")
    first_counted = trio.current_time()  # Not before: the send's own time is earlier.
    await trio.sleep(WINDOW / 2)
    second_sent = trio.current_time()
    assert await limiter.allow(1, "direct")
    for _ in range(5):
        assert not await limiter.allow(1, "direct")

    await trio.sleep_until(first_counted + WINDOW + 0.1)
    assert trio.current_time() < second_sent + WINDOW, "the test machine stalled"
    # The first send slid out of the window; the second is still in it; the five refused
    # (newer than both) would block this if they had been counted.
    assert await limiter.allow(1, "direct")
    assert not await limiter.allow(1, "direct")


async def test_concurrent_sends_never_pass_the_limit(
    client: coredis.Redis, other_client: coredis.Redis, prefix: str
) -> None:
    limit = 10
    nodes = [
        RedisRateLimiter(node_client, {"direct": limit, "group": limit}, 60, prefix=prefix)
        for node_client in (client, other_client)
    ]
    allowed: list[bool] = []

    async def send(limiter: RedisRateLimiter) -> None:
        allowed.append(await limiter.allow(7, "direct"))

    async with trio.open_nursery() as nursery:
        for i in range(100):
            nursery.start_soon(send, nodes[i % 2])
    assert len(allowed) == 100
    assert allowed.count(True) == limit


async def test_redis_down_falls_back_to_the_node_and_logs_once(
    redis_server, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hubbub.engine")
    fallback = InProcessRateLimiter({"direct": 2, "group": 2}, 60)
    async with coredis.Redis.from_url(redis_server.url, decode_responses=False) as client:
        limiter = RedisRateLimiter(
            client, {"direct": 2, "group": 2}, 60, prefix=prefix, fallback=fallback, timeout=0.5
        )
        assert await limiter.allow(1, "direct")  # Counted in Redis only.

        redis_server.kill()
        with trio.fail_after(HANG):
            # The fallback saw none of Redis's sends: per node, the limit starts afresh.
            assert [await limiter.allow(1, "direct") for _ in range(3)] == [True, True, False]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert [r.getMessage() for r in warnings] == [
            "redis unavailable, degrading until it answers"
        ]

        redis_server.start()
        # Redis restarted empty: it, not the exhausted fallback, decides again.
        assert await limiter.allow(1, "direct")
        assert "redis answers again" in [r.getMessage() for r in caplog.records]


async def test_slow_redis_times_out_to_the_fallback(prefix: str) -> None:
    # A port that accepts connections and never answers: a Redis too slow to wait for.
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    try:
        url = f"redis://127.0.0.1:{port}/0"
        async with coredis.Redis.from_url(url, decode_responses=False) as client:
            limiter = RedisRateLimiter(
                client, {"direct": 2, "group": 2}, 60, prefix=prefix, timeout=0.2
            )
            with trio.fail_after(HANG):
                results = [await limiter.allow(1, "direct") for _ in range(3)]
        assert results == [True, True, False]
    finally:
        for listener in listeners:
            await listener.aclose()


async def test_a_flushed_script_cache_costs_one_batch_then_redis_decides_again(
    client: RedisClient, prefix: str
) -> None:
    limiter = RedisRateLimiter(client, {"direct": 100, "group": 100}, 60, prefix=prefix)
    key = f"{prefix}rate:{{1}}:direct"

    async def burst() -> list[bool]:
        answers: list[bool] = []

        async def send() -> None:
            answers.append(await limiter.allow(1, "direct"))

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(send)
        return answers

    assert await burst() == [True] * 5
    assert await client.zcard(key) == 5
    await client.script_flush()  # as a Redis restarted empty would have it
    # The batch that finds the script gone falls back (counted on this node only)...
    assert await burst() == [True] * 5
    assert await client.zcard(key) == 5
    # ...and the next one reloads it and is counted in Redis again.
    assert await burst() == [True] * 5
    assert await client.zcard(key) == 10
