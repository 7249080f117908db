"""The RedisBridge against a real Redis: two bridges are two nodes."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import coredis
import pytest
import trio

from hubbub.config import load_settings
from hubbub.engine.chat.ports import Event, Subscriber
from hubbub.engine.cluster import ClusterHooks, open_cluster, redis_bus
from hubbub.engine.cluster.redis_bus import LOST_CHANNEL, RedisBridge, decode_event, encode_event
from hubbub.engine.cluster.redis_client import client_for_url
from hubbub.metrics import Metrics
from tests.helpers.servers import RedisServer

pytestmark = pytest.mark.redis
_prefixes = itertools.count()
#: Hang guard for what must happen soon (a reconnection backs off up to 5 s).
SOON = 15.0


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


class Timeline:
    """One node's view, in order: what its subscribers got and when its resync hook ran."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, ...]] = []
        self._changed = trio.Event()

    def _add(self, entry: tuple[Any, ...]) -> None:
        self.entries.append(entry)
        self._changed.set()
        self._changed = trio.Event()

    def subscriber(self, channel: str) -> Subscriber:
        """A subscriber for ``channel``: keep it, to unsubscribe the same one."""
        return lambda event: self._add(("event", channel, event.frame))

    async def on_resync(self, channels: frozenset[str] | None) -> None:
        self._add(("resync", channels))

    def resyncs(self) -> list[frozenset[str] | None]:
        return [entry[1] for entry in self.entries if entry[0] == "resync"]

    async def wait_until(self, done: Callable[[], bool], timeout: float = SOON) -> None:
        with trio.fail_after(timeout):
            while not done():
                await self._changed.wait()


class Tally:
    """A count callback (``on_dropped``) a test can wait on."""

    def __init__(self) -> None:
        self.total = 0
        self._changed = trio.Event()

    def __call__(self, count: int) -> None:
        self.total += count
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, total: int, timeout: float = SOON) -> None:
        with trio.fail_after(timeout):
            while self.total < total:
                await self._changed.wait()


@asynccontextmanager
async def bridges(
    url: str | Sequence[str],
    count: int = 1,
    *,
    per_node: Callable[[int], dict[str, Any]] = lambda index: {},
    **kwargs: Any,
) -> AsyncIterator[list[RedisBridge]]:
    """``count`` running, connected bridges (nodes ``node0``...) on one fresh prefix; ``url``
    may name each node's Redis URL; ``per_node(index)`` adds that node's own arguments."""
    urls = [url] * count if isinstance(url, str) else list(url)
    prefix = f"test{next(_prefixes)}:"
    async with AsyncExitStack() as stack:
        clients = [client_for_url(node_url, connect_timeout=5) for node_url in urls]
        for client in clients:
            await stack.enter_async_context(client)
        nursery = await stack.enter_async_context(trio.open_nursery())
        running = []
        for index, client in enumerate(clients):
            options = {**kwargs, **per_node(index)}
            bridge = RedisBridge(client, f"node{index}", prefix=prefix, **options)
            await nursery.start(bridge.run)
            running.append(bridge)
        with trio.fail_after(5):
            for bridge in running:
                await bridge.wait_connected()
        yield running
        nursery.cancel_scope.cancel()


async def redis_subscriptions(admin: coredis.Redis, bridge: RedisBridge) -> set[str]:
    """The bridge's channels as Redis sees them (PUBSUB CHANNELS), less its loss channel.
    Only for tests with one bridge on the prefix."""
    raw = await admin.pubsub_channels(pattern=bridge.prefix + "*")
    channels = {name.decode()[len(bridge.prefix) :] for name in raw}
    assert LOST_CHANNEL in channels
    return channels - {LOST_CHANNEL}


def test_events_round_trip_through_the_wire_format() -> None:
    event = Event("direct", b'{"a":"b|c"}', 42)
    decoded = decode_event(encode_event(event, "n1"))
    assert decoded == Event("direct", b'{"a":"b|c"}', 42, "n1")
    assert decode_event(encode_event(Event("presence", b"{}"), "n2")).message_id is None


async def test_an_event_reaches_the_other_node_once_and_the_local_one_once(
    redis_url: str,
) -> None:
    async with bridges(redis_url, 2) as (a, b):
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
    redis_url: str,
) -> None:
    async with bridges(redis_url, 3) as (a, b, c):
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

    async def on_resync(channels: frozenset[str] | None) -> None:
        assert channels is None  # A reconnection: anything may have been missed.
        resyncs.set()

    async with bridges(redis_server.url, 2, on_resync=on_resync) as (a, b):
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


# -- subscription changes ------------------------------------------------------------


async def test_subscription_churn_while_disconnected_is_bounded_and_caught_up(
    redis_server: RedisServer,
) -> None:
    users = 1000
    owner = Timeline()
    async with bridges(redis_server.url) as (bridge,):
        redis_server.kill()
        with trio.fail_after(SOON):
            await bridge.wait_disconnected()
        subscribers = {f"user:{n}": owner.subscriber(f"user:{n}") for n in range(users)}
        # 200,000 changes: twice what the old queue of changes could hold.
        for cycle in range(100_000):
            channel = f"user:{cycle % users}"
            await bridge.subscribe(channel, subscribers[channel])
            bridge.unsubscribe(channel, subscribers[channel])
            assert bridge.pending_changes <= users
        kept = {f"user:{n}" for n in range(0, users, 3)}
        for channel in kept:
            await bridge.subscribe(channel, subscribers[channel])

        redis_server.start()
        with trio.fail_after(SOON):
            await bridge.wait_connected()
        async with coredis.Redis.from_url(redis_server.url, decode_responses=False) as admin:
            assert await redis_subscriptions(admin, bridge) == kept

            # Connected, the same churn goes through Redis; a subscribe returns once it and
            # every change before it are applied.
            churning = {f"group:{n}": owner.subscriber(f"group:{n}") for n in range(7)}
            for cycle in range(500):
                channel = f"group:{cycle % 7}"
                await bridge.subscribe(channel, churning[channel])
                bridge.unsubscribe(channel, churning[channel])
            gone = sorted(kept)[:100]
            for channel in gone:
                bridge.unsubscribe(channel, subscribers[channel])
            await bridge.subscribe("user:5", subscribers["user:5"])
            assert set(bridge.channels()) == (kept - set(gone)) | {"user:5"}
            assert await redis_subscriptions(admin, bridge) == set(bridge.channels())
            assert bridge.pending_changes == 0


# -- lost publishes ------------------------------------------------------------------


async def test_failed_publishes_are_counted_and_their_holders_resync_once(
    redis_server: RedisServer,
) -> None:
    # Node 0's publishes fail by ACL: Redis answers at once, so (unlike a timeout) no
    # attempt can fail here and yet be carried out there; the outcome is exact.
    a_view, b_view, c_view = Timeline(), Timeline(), Timeline()
    dropped = Tally()
    async with coredis.Redis.from_url(redis_server.url, decode_responses=False) as admin:
        await admin.acl_setuser("node0", "on", ">secret", "~*", "&*", "+@all")
        node0_url = redis_server.url.replace("redis://", "redis://node0:secret@")
        views = (a_view, b_view, c_view)
        async with bridges(
            [node0_url, redis_server.url, redis_server.url],
            per_node=lambda index: {"on_resync": views[index].on_resync},
            on_dropped=dropped,
        ) as (a, b, c):
            for channel in ("user:1", "group:2", "user:3"):
                await b.subscribe(channel, b_view.subscriber(channel))
            await c.subscribe("user:4", c_view.subscriber("user:4"))

            await admin.acl_setuser("node0", "-publish")
            for n in range(3):
                a.publish("user:1", Event("direct", b"lost %d" % n))
            for n in range(2):
                a.publish("group:2", Event("group", b"lost %d" % n))
            await dropped.wait_for(5)
            await admin.acl_setuser("node0", "+publish")
            # At once: whenever Redis takes node 0's publishes again, the announcement
            # goes first, so node 1 resyncs before it sees this.
            a.publish("user:3", Event("direct", b"after"))
            a.publish("user:4", Event("direct", b"after"))
            await b_view.wait_until(lambda: len(b_view.entries) >= 2)
            await c_view.wait_until(lambda: len(c_view.entries) >= 1)

    assert (a.dropped, dropped.total) == (5, 5)
    assert b_view.entries == [
        ("resync", frozenset({"user:1", "group:2"})),
        ("event", "user:3", b"after"),
    ]
    # Node 2 holds none of the lost channels; node 0's own subscribers lose nothing.
    assert c_view.entries == [("event", "user:4", b"after")]
    assert a_view.entries == []


async def test_an_overflowing_outbox_is_announced_ahead_of_what_follows(
    redis_server_url: str,
) -> None:
    view = Timeline()
    dropped = Tally()
    async with bridges(
        redis_server_url,
        2,
        per_node=lambda index: {"outbox_size": 4, "on_dropped": dropped} if index == 0 else {},
        on_resync=view.on_resync,
    ) as (a, b):
        for channel in ("user:1", "user:2", "group:2"):
            await b.subscribe(channel, view.subscriber(channel))
        # No checkpoint in between: the publishing task takes the first event, the
        # outbox holds four more, and the rest finds it full.
        for n in range(5):
            a.publish("user:1", Event("direct", b"kept %d" % n))
        for n in range(3):
            a.publish("user:2", Event("direct", b"overflow %d" % n))
            a.publish("group:2", Event("group", b"overflow %d" % n))
        assert (a.dropped, dropped.total) == (6, 6)
        await view.wait_until(lambda: len(view.entries) >= 6)
        assert view.entries == [
            ("resync", frozenset({"user:2", "group:2"})),
            *[("event", "user:1", b"kept %d" % n) for n in range(5)],
        ]


async def test_too_many_lost_channels_resync_everything(redis_server_url: str) -> None:
    view = Timeline()
    async with bridges(
        redis_server_url,
        2,
        per_node=lambda index: {"outbox_size": 1} if index == 0 else {},
        on_resync=view.on_resync,
    ) as (a, b):
        await b.subscribe("user:0", view.subscriber("user:0"))
        # The outbox holds one: almost all of these are lost, on too many channels to list.
        for n in range(redis_bus.LOST_CHANNELS_MAX + 10):
            a.publish(f"user:{n}", Event("direct", b"x"))
        await view.wait_until(lambda: bool(view.resyncs()))
        a.publish("user:0", Event("direct", b"barrier"))
        await view.wait_until(lambda: ("event", "user:0", b"barrier") in view.entries)
        assert view.resyncs() == [None]


# -- resync after a reconnection -----------------------------------------------------


async def test_every_pubsub_reconnection_resyncs_once_before_delivering(
    redis_server: RedisServer,
) -> None:
    kills = 5
    view = Timeline()
    async with coredis.Redis.from_url(redis_server.url, decode_responses=False) as admin:

        async def on_resync(channels: frozenset[str] | None) -> None:
            await view.on_resync(channels)
            # Published while the hook runs, so after the resubscription: it must reach
            # the subscriber, and only once the hook is done.
            during = encode_event(Event("direct", b"during %d" % len(view.resyncs())), "x")
            assert await admin.publish(bridge.prefix + "user:1", during) == 1

        async with bridges(redis_server.url, on_resync=on_resync) as (bridge,):
            await bridge.subscribe("user:1", view.subscriber("user:1"))
            for kill in range(1, kills + 1):
                assert await admin.client_kill(type_=coredis.PureToken.PUBSUB) == 1
                await view.wait_until(lambda k=kill: len(view.entries) == 2 * k)
            barrier = encode_event(Event("direct", b"barrier"), "x")
            await admin.publish(bridge.prefix + "user:1", barrier)
            await view.wait_until(lambda: view.entries[-1][-1] == b"barrier")

    expected = []
    for kill in range(1, kills + 1):
        expected += [("resync", None), ("event", "user:1", b"during %d" % kill)]
    assert view.entries == [*expected, ("event", "user:1", b"barrier")]


async def run_cancellable(
    bridge: RedisBridge, *, task_status: trio.TaskStatus[trio.CancelScope]
) -> None:
    with trio.CancelScope() as scope:
        task_status.started(scope)
        await bridge.run()


async def test_a_restarted_bridge_resyncs_on_its_first_connection(redis_server_url: str) -> None:
    view = Timeline()
    async with coredis.Redis.from_url(redis_server_url, decode_responses=False) as client:
        bridge = RedisBridge(client, "node0", prefix="restart:", on_resync=view.on_resync)
        await bridge.subscribe("user:1", view.subscriber("user:1"))
        async with trio.open_nursery() as nursery:
            first_run = await nursery.start(run_cancellable, bridge)
            with trio.fail_after(SOON):
                await bridge.wait_connected()
            first_run.cancel()  # As a supervisor stops a child it restarts.
            with trio.fail_after(SOON):
                await bridge.wait_disconnected()
            assert view.entries == []  # The very first connection missed nothing.

            nursery.start_soon(bridge.run)
            await view.wait_until(lambda: len(view.entries) == 1)
            assert view.resyncs() == [None]
            nursery.cancel_scope.cancel()


# -- back-off and metrics ------------------------------------------------------------


async def test_reconnection_back_off_doubles_and_is_jittered(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[float] = []
    tried = trio.Event()

    def jittered(delay: float) -> float:
        asked.append(delay)
        if len(asked) == 8:
            tried.set()
        return 0.01  # Quick: the test is about which delays are asked for.

    monkeypatch.setattr(redis_bus, "jittered", jittered)
    async with bridges(redis_server.url):
        redis_server.kill()
        with trio.fail_after(SOON):
            await tried.wait()
    assert asked[:8] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


async def test_drops_and_resyncs_reach_the_node_metrics(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    resynced = trio.Event()

    async def resync(channels: frozenset[str] | None) -> None:
        resynced.set()

    async def user_expired(user_id: int) -> None:
        raise AssertionError("no presence in this test")

    hooks = ClusterHooks(local_users=list, user_expired=user_expired, resync=resync)
    settings = load_settings(
        environ={
            "HUBBUB_DATA_DIR": str(tmp_path),
            "HUBBUB_REDIS_URL": redis_server.url,
            "HUBBUB_JWT_SECRET": "test-secret-test-secret-test-secret-42",
        }
    )
    metrics = Metrics()
    async with (
        coredis.Redis.from_url(redis_server.url, decode_responses=False) as admin,
        open_cluster(settings, hooks, metrics) as cluster,
        trio.open_nursery() as nursery,
    ):
        bridge = cluster.bus
        assert isinstance(bridge, RedisBridge)
        await nursery.start(bridge.run)
        with trio.fail_after(SOON):
            await bridge.wait_connected()
        assert b'hubbub_bus_resyncs_total{cause="reconnect"} 0.0' in metrics.render()
        assert b"hubbub_bus_dropped_total 0.0" in metrics.render()

        await admin.client_kill(type_=coredis.PureToken.PUBSUB)
        with trio.fail_after(SOON):
            await resynced.wait()
        assert b'hubbub_bus_resyncs_total{cause="reconnect"} 1.0' in metrics.render()

        # No checkpoint in between: the publishing task takes one, the outbox holds
        # 65,536, the rest are dropped.
        for n in range(65_537 + 63):
            bridge.publish(f"user:{n % 100}", Event("direct", b"x"))
        assert b"hubbub_bus_dropped_total 63.0" in metrics.render()
        nursery.cancel_scope.cancel()
