"""What is particular to a Redis Cluster: the URL, sharded pub/sub, and keys that share
a slot where scripts need them to. The parts' behaviour on a cluster is checked by the
other tests here, whose ``client`` and ``redis_url`` fixtures include a cluster."""

from __future__ import annotations

from pathlib import Path

import coredis
import pytest
import trio

from hubbub.config import (
    ConfigError,
    Settings,
    check_redis_url,
    cluster_nodes,
    is_cluster_url,
    load_settings,
)
from hubbub.engine.chat.ports import Event
from hubbub.engine.cluster import ClusterHooks, ClusterUnavailable, open_cluster
from hubbub.engine.cluster.redis_bus import RedisBridge
from hubbub.engine.cluster.redis_client import RedisClient, client_for_url, is_cluster
from hubbub.engine.cluster.redis_presence import CLUSTER_BUCKETS, RedisPresence, presence_keys
from hubbub.engine.cluster.redis_rate_limit import RedisRateLimiter
from tests.engine.test_redis_bridge import Inbox, Tally, Timeline, bridges

pytestmark = pytest.mark.redis


def test_a_cluster_url_lists_its_start_up_nodes() -> None:
    url = "redis+cluster://user:secret@10.0.0.1:7000,10.0.0.2:7001/"
    check_redis_url(url)
    assert is_cluster_url(url) and not is_cluster_url("redis://10.0.0.1:6379/0")
    assert cluster_nodes(url) == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert cluster_nodes("rediss+cluster://[::1]:7000") == [("::1", 7000)]


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("redis+cluster://10.0.0.1", "is not host:port"),
        ("redis+cluster://10.0.0.1:7000,:7001", "is not host:port"),
        ("redis+cluster://10.0.0.1:99999", "is not host:port"),
        ("redis+cluster://10.0.0.1:7000/3", "no databases but 0"),
        ("cluster://10.0.0.1:7000", "is not understood"),
    ],
)
def test_a_malformed_cluster_url_is_refused_saying_why(url: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        check_redis_url(url)


async def test_channels_are_sharded_on_a_cluster(redis_cluster) -> None:
    async with bridges(redis_cluster.url, 2) as (a, b):
        assert a.sharded and b.sharded
        on_b = Inbox()
        channels = [f"user:{n}" for n in range(20)]  # spread over the three masters
        for channel in channels:
            await b.subscribe(channel, on_b)
        for n, channel in enumerate(channels):
            a.publish(channel, Event("direct", b"%d" % n, n))
        received = await on_b.wait_for(len(channels))
        assert sorted(event.message_id or 0 for event in received) == list(range(20))
        # Redis knows them as shard channels (SSUBSCRIBE), not classic ones.
        shard = await a.client.pubsub_shardnumsub(*(a.prefix + c for c in channels))
        assert set(shard.values()) == {1}
        assert await a.client.pubsub_channels(pattern=a.prefix + "user:*") == set()


async def test_a_loss_on_a_cluster_is_announced_to_its_holders_once(redis_cluster) -> None:
    # On a cluster the announcement travels on its own shard, so it is not ordered with
    # other shards' events (redis_bus's docstring); it still reaches each holder once.
    view, dropped = Timeline(), Tally()
    async with bridges(
        redis_cluster.url,
        2,
        per_node=lambda index: {"outbox_size": 1, "on_dropped": dropped} if index == 0 else {},
        on_resync=view.on_resync,
    ) as (a, b):
        for channel in ("user:1", "user:2", "group:2"):
            await b.subscribe(channel, view.subscriber(channel))
        a.publish("user:1", Event("direct", b"kept 0"))
        a.publish("user:1", Event("direct", b"kept 1"))
        a.publish("user:2", Event("direct", b"overflow"))
        a.publish("group:2", Event("group", b"overflow"))
        assert (a.dropped, dropped.total) == (2, 2)
        await view.wait_until(lambda: len(view.entries) >= 3)
        assert view.resyncs() == [frozenset({"user:2", "group:2"})]
        assert [entry for entry in view.entries if entry[0] == "event"] == [
            ("event", "user:1", b"kept 0"),
            ("event", "user:1", b"kept 1"),
        ]


async def test_concurrent_checks_share_round_trips_and_each_gets_its_own_answer(
    client: RedisClient, prefix: str
) -> None:
    """On one Redis and on a cluster (where the pipeline splits per master)."""
    limit = 3
    limiter = RedisRateLimiter(client, {"direct": limit, "group": limit}, 60, prefix=prefix)
    answers: dict[int, list[bool]] = {user: [] for user in range(1, 21)}

    async def send(user: int) -> None:
        answers[user].append(await limiter.allow(user, "direct"))

    # Twenty users, five sends each, all started in one scheduler pass.
    async with trio.open_nursery() as nursery:
        for _ in range(5):
            for user in answers:
                nursery.start_soon(send, user)
    assert {user: sorted(got) for user, got in answers.items()} == {
        user: [False, False, True, True, True] for user in answers
    }
    assert limiter.checks == 100
    assert limiter.round_trips < 10, "concurrent checks should have been coalesced"


def cluster_settings(tmp_path: Path, url: str) -> Settings:
    return load_settings(
        environ={
            "HUBBUB_DATA_DIR": str(tmp_path),
            "HUBBUB_REDIS_URL": url,
            "HUBBUB_JWT_SECRET": "test-secret-test-secret-test-secret-42",
        }
    )


def no_hooks() -> ClusterHooks:
    async def nothing(*_: object) -> None:
        pass

    return ClusterHooks(local_users=list, user_expired=nothing, resync=nothing)


async def test_a_node_on_a_cluster_url_joins_the_cluster(tmp_path: Path, redis_cluster) -> None:
    async with open_cluster(cluster_settings(tmp_path, redis_cluster.url), no_hooks()) as joined:
        assert isinstance(joined.bus, RedisBridge) and joined.bus.sharded
        assert is_cluster(joined.bus.client)
        assert await joined.rate_limiter.allow(1, "direct")


async def test_a_cluster_that_does_not_answer_is_a_clear_start_up_error(tmp_path: Path) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    await listeners[0].aclose()  # nobody listens there now
    url = f"redis+cluster://127.0.0.1:{port}"
    with trio.fail_after(30), pytest.raises(ClusterUnavailable, match="did not answer") as raised:
        async with open_cluster(cluster_settings(tmp_path, url), no_hooks()):
            pass
    assert url in str(raised.value)


async def test_presence_buckets_spread_users_and_every_view_reads_them_all(
    redis_cluster, prefix: str
) -> None:
    async with client_for_url(redis_cluster.url, connect_timeout=5) as client:
        users = set(range(1, 41))
        presence = RedisPresence(
            client, "a", local_users=lambda: users, on_expired=_never_expires, prefix=prefix
        )
        assert presence.buckets == CLUSTER_BUCKETS
        for user in sorted(users):
            assert await presence.went_online(user)
        assert await presence.online_users() == sorted(users)
        assert await presence.online_among([3, 17, 40, 99]) == {3, 17, 40}
        slots = {
            await client.cluster_keyslot(presence_keys(prefix, CLUSTER_BUCKETS, u)[0])
            for u in users
        }
        assert len(slots) == CLUSTER_BUCKETS
        assert await presence.went_offline(17)
        assert 17 not in await presence.online_users()


async def _never_expires(user_id: int) -> None:
    raise AssertionError(f"user {user_id} expired")


async def test_killed_shard_connections_reconnect_resync_and_deliver_again(
    redis_cluster_session,
) -> None:
    # The session's own cluster object: it knows each master's port.
    masters = getattr(redis_cluster_session, "nodes", None)
    if masters is None:
        pytest.skip("HUBBUB_TEST_REDIS_CLUSTER_URL given: its masters are not ours to kill")
    view = Timeline()
    async with bridges(redis_cluster_session.url, 2, on_resync=view.on_resync) as (a, b):
        channels = [f"user:{n}" for n in range(6)]
        for channel in channels:
            await b.subscribe(channel, view.subscriber(channel))
        killed = 0
        for master in masters:
            async with coredis.Redis(host="127.0.0.1", port=master.port) as admin:
                killed += await admin.client_kill(type_=coredis.PureToken.PUBSUB)
        assert killed >= len(masters)  # b's subscriber connection to each master, at least
        with trio.fail_after(15):
            await b.wait_disconnected()
            await b.wait_connected()
            await view.wait_until(lambda: view.resyncs() != [])
        assert set(view.resyncs()) == {None}
        for n, channel in enumerate(channels):
            a.publish(channel, Event("direct", b"after %d" % n))
        await view.wait_until(lambda: len([e for e in view.entries if e[0] == "event"]) == 6)
        assert sorted(e[1:] for e in view.entries if e[0] == "event") == [
            (channel, b"after %d" % n) for n, channel in enumerate(channels)
        ]
