"""The RedisBridge against a real Redis: two bridges are two nodes."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import coredis
import pytest
import trio

from hubbub.engine.chat.ports import Event
from hubbub.engine.cluster.redis_bus import RedisBridge, decode_event, encode_event
from tests.helpers.servers import RedisServer

pytestmark = pytest.mark.redis
_prefixes = itertools.count()


class Inbox:
    """A subscriber that records events and lets a test wait for them."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = trio.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Event]:
        with trio.fail_after(timeout):
            while len(self.events) < count:
                await self._changed.wait()
        return self.events


@asynccontextmanager
async def bridges(url: str, count: int, **kwargs) -> AsyncIterator[list[RedisBridge]]:
    prefix = f"test{next(_prefixes)}:"
    async with AsyncExitStack() as stack:
        clients = [coredis.Redis.from_url(url, decode_responses=False) for _ in range(count)]
        for client in clients:
            await stack.enter_async_context(client)
        nursery = await stack.enter_async_context(trio.open_nursery())
        running = []
        for index, client in enumerate(clients):
            bridge = RedisBridge(client, f"node{index}", prefix=prefix, **kwargs)
            await nursery.start(bridge.run)
            running.append(bridge)
        with trio.fail_after(5):
            for bridge in running:
                await bridge.wait_connected()
        yield running
        nursery.cancel_scope.cancel()


def test_events_round_trip_through_the_wire_format() -> None:
    event = Event("direct", b'{"a":"b|c"}', 42)
    decoded = decode_event(encode_event(event, "n1"))
    assert decoded == Event("direct", b'{"a":"b|c"}', 42, "n1")
    assert decode_event(encode_event(Event("presence", b"{}"), "n2")).message_id is None


async def test_an_event_reaches_the_other_node_once_and_the_local_one_once(
    redis_server_url: str,
) -> None:
    async with bridges(redis_server_url, 2) as (a, b):
        on_a, on_b = Inbox(), Inbox()
        await a.subscribe("user:1", on_a)
        await b.subscribe("user:1", on_b)
        a.publish("user:1", Event("direct", b"hello", 7))
        [received] = await on_b.wait_for(1)
        assert (received.frame, received.message_id, received.origin) == (b"hello", 7, "node0")
        # A barrier through Redis: once it arrives, any echo of the first would have too.
        a.publish("user:1", Event("direct", b"second", 8))
        await on_b.wait_for(2)
        assert [e.frame for e in on_a.events] == [b"hello", b"second"]
        assert [e.frame for e in on_b.events] == [b"hello", b"second"]


async def test_nodes_without_the_channel_get_nothing_and_unsubscribe_stops_delivery(
    redis_server_url: str,
) -> None:
    async with bridges(redis_server_url, 3) as (a, b, c):
        on_b, on_c, on_c_other = Inbox(), Inbox(), Inbox()
        await b.subscribe("group:5", on_b)
        await c.subscribe("group:6", on_c_other)
        a.publish("group:5", Event("group", b"one", 1))
        a.publish("group:6", Event("group", b"barrier", 2))
        await on_b.wait_for(1)
        await on_c_other.wait_for(1)
        assert on_c.events == []
        assert "group:5" not in c.channels()

        b.unsubscribe("group:5", on_b)
        await b.subscribe("group:6", on_c)  # reuse an inbox as B's barrier
        a.publish("group:5", Event("group", b"after", 3))
        a.publish("group:6", Event("group", b"barrier2", 4))
        await on_c.wait_for(1)
        assert [e.frame for e in on_b.events] == [b"one"]


async def test_redis_restart_reconnects_resubscribes_and_resyncs(
    redis_server: RedisServer,
) -> None:
    resyncs = trio.Event()

    async def on_reconnect() -> None:
        resyncs.set()

    async with bridges(redis_server.url, 2, on_reconnect=on_reconnect) as (a, b):
        on_b = Inbox()
        await b.subscribe("user:9", on_b)
        redis_server.kill()
        with trio.fail_after(5):
            await a.wait_disconnected()
        assert not await a.ready()
        # Published while Redis is down: dropped from the bus (storage keeps messages).
        a.publish("user:9", Event("direct", b"lost", 1))
        redis_server.start()
        with trio.fail_after(15):
            await resyncs.wait()
            await a.wait_connected()
            await b.wait_connected()
        assert await a.ready()
        a.publish("user:9", Event("direct", b"after restart", 2))
        [event] = await on_b.wait_for(1, timeout=10)
        assert event.frame == b"after restart"
