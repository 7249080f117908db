"""Presence across nodes: contacts on other nodes are told, the HTTP views are global, and a
user on two nodes is online until their last connection closes (docs/contract.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hubbub.client import Account, ChatClient
from hubbub.config import is_cluster_url
from hubbub.engine.cluster.redis_client import RedisClient, client_for_url
from hubbub.engine.cluster.redis_presence import CLUSTER_BUCKETS, presence_keys
from tests.helpers.chat import Frame, frames_until, is_text
from tests.helpers.cluster import Cluster
from tests.helpers.polling import poll_until
from tests.helpers.views import online_view, presence_view

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

A, B, C = range(3)


def presence_of(user: Account, status: str) -> Callable[[Frame], bool]:
    return lambda frame: (
        frame["type"] == "presence"
        and frame["user_id"] == user.id
        and frame["presence_status"] == status
    )


def presence_history(frames: list[Frame], user: Account) -> list[str]:
    return [
        frame["presence_status"]
        for frame in frames
        if frame["type"] == "presence" and frame["user_id"] == user.id
    ]


@pytest.mark.redis_cluster
async def test_a_contact_on_another_node_sees_presence_and_the_views_are_global(
    cluster: Cluster,
) -> None:
    partner, x = await cluster.register_all("partner", "x")
    async with cluster.connect(partner, A) as partner_a:
        await partner_a.send_direct(x.id, "are you there?", "q")  # now they are related
        async with cluster.connect(x, B):
            online = await partner_a.receive_where(presence_of(x, "online"), timeout=10)
            assert online == {
                "type": "presence",
                "user_id": x.id,
                "username": x.username,
                "presence_status": "online",
                "last_seen_iso": None,
            }
            assert x.id in await online_view(cluster.http(C), partner)
            assert await presence_view(cluster.http(C), partner, x.id) == "online"
        offline = await partner_a.receive_where(presence_of(x, "offline"), timeout=10)
        assert offline["last_seen_iso"] is not None
        # The offline frame is sent after the presence store dropped X: the views agree.
        assert x.id not in await online_view(cluster.http(C), partner)
        assert await presence_view(cluster.http(C), partner, x.id) == "offline"
        last_seen = await cluster.http(B).get(f"/users/presence/{x.id}", partner.access_token)
        assert last_seen.json()["last_seen"] is not None


@pytest.mark.redis_cluster
async def test_a_user_on_two_nodes_stays_online_until_the_last_connection_closes(
    cluster: Cluster,
) -> None:
    partner, x = await cluster.register_all("partner", "x")
    buckets = CLUSTER_BUCKETS if is_cluster_url(cluster.redis.url) else 1
    claims_key = presence_keys("hubbub:", buckets, x.id)[1]
    async with (
        client_for_url(cluster.redis.url, connect_timeout=5) as redis,
        cluster.connect(partner, A) as partner_a,
    ):
        await partner_a.send_direct(x.id, "are you there?", "q")
        seen: list[Frame] = []
        async with cluster.connect(x, B) as x_b:
            async with cluster.connect(x, C):
                # Both attached. A claim may miss Redis under load (the next heartbeat
                # makes it), so wait for both rather than assume them.
                await poll_until(
                    lambda: _claims_are(redis, claims_key, 2),
                    what="a claim from B and C",
                    timeout=10,
                )
            # Closing is asynchronous to the server: wait for C to drop its claim.
            await poll_until(
                lambda: _claims_are(redis, claims_key, 1),
                what="node C dropping its claim",
                timeout=10,
            )
            for via in (A, C):
                assert x.id in await online_view(cluster.http(via), partner)
                assert await presence_view(cluster.http(via), partner, x.id) == "online"
            ack = await partner_a.send_direct(x.id, "still there?", "q2")
            assert ack["status"] == "delivered"
            await x_b.receive_where(is_text("message", "still there?"), timeout=10)
        seen += await frames_until(partner_a, presence_of(x, "offline"))
        assert x.id not in await online_view(cluster.http(C), partner)

        # X comes back: the next presence frame about X must be this online, with no
        # late offline from node C's earlier close in between.
        async with ChatClient.connect(cluster.url(A), x.access_token):
            seen += await frames_until(partner_a, presence_of(x, "online"))
    history = presence_history(seen, x)
    assert history.count("offline") == 1, history
    assert history[-2:] == ["offline", "online"], history


async def test_a_second_device_on_another_node_announces_nothing(cluster: Cluster) -> None:
    """Contacts hear "online" when a user goes online, not once per node they connect to
    (a second device on the same node announces nothing either)."""
    partner, x = await cluster.register_all("partner", "x")
    async with cluster.connect(partner, A) as partner_a:
        await partner_a.send_direct(x.id, "are you there?", "q")
        async with cluster.connect(x, B), cluster.connect(x, C) as x_c:
            # After node C's own announcement, if any: same node, same channel, in order.
            await x_c.send_direct(partner.id, "both here", "both")
            seen = await frames_until(partner_a, is_text("message", "both here"))
    assert presence_history(seen, x) == ["online"]


async def _claims_are(redis: RedisClient, key: str, count: int) -> bool:
    return await redis.zcard(key) == count
