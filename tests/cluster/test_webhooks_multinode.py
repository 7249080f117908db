"""Webhooks from three nodes on one PostgreSQL and one Redis: each event is sent by one
node (the receiver sees each id once; duplicates only on a crash), presence transitions
of a user on two nodes are reported once, and another node takes over sending when the
sending node dies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from hubbub.client import ChatClient
from tests.helpers.cluster import Cluster, ClusterFactory
from tests.helpers.stream import create_group
from tests.helpers.webhooks import SECRET, WebhookReceiver, open_receiver

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

NODES = range(3)


@asynccontextmanager
async def hooked_cluster(
    factory: ClusterFactory, lease: str
) -> AsyncIterator[tuple[Cluster, WebhookReceiver]]:
    async with (
        open_receiver(SECRET) as receiver,
        factory(
            webhook_url=receiver.url,
            webhook_secret=SECRET,
            webhook_timeout="2",
            webhook_undelivered_after="1",
            webhook_lease=lease,
        ) as cluster,
    ):
        yield cluster, receiver


def created(receiver: WebhookReceiver) -> set[int]:
    return {
        e["data"]["message_id"]
        for e in receiver.accepted("message.created")
        if "recipient_id" in e["data"]
    }


async def attempts_by_node(cluster: Cluster) -> list[float]:
    """Each running node's webhook POSTs so far (from its /metrics)."""
    counts = []
    for index in NODES:
        if cluster.nodes[index] is None:
            counts.append(0.0)
            continue
        text = (await cluster.http(index).get("/metrics")).text
        counts.append(
            sum(
                float(line.split()[-1])
                for line in text.splitlines()
                if line.startswith("hubbub_webhook_attempts_total{")
            )
        )
    return counts


async def send_from_each_node(cluster: Cluster, alice_id: int, *senders: object) -> list[int]:
    ids = []
    for index, sender in enumerate(senders):
        async with cluster.connect(sender, via=index % 3) as chat:  # type: ignore[arg-type]
            ack = await chat.send_direct(alice_id, f"from node {index % 3}", f"n{index}")
            assert ack["type"] == "ack"
            ids.append(ack["message_id"])
    return ids


async def test_each_event_is_sent_by_one_node(cluster_factory: ClusterFactory) -> None:
    # A lease far longer than its renewals (a third of it) are apart, however loaded the
    # machine: one node holds it throughout.
    async with hooked_cluster(cluster_factory, lease="15") as (cluster, receiver):
        alice, bob, carol, dave = await cluster.register_all("alice", "bob", "carol", "dave")
        # alice on two nodes at once: online once, offline once, for the user as a whole.
        async with cluster.connect(alice, via=0), cluster.connect(alice, via=1):
            await receiver.wait_event("user.online", lambda e: e["data"]["user_id"] == alice.id)
            sent = await send_from_each_node(cluster, alice.id, bob, carol, dave)
            group_id = await create_group(cluster.http(2), bob, "crew", carol, dave)
        await receiver.wait_event("user.offline", lambda e: e["data"]["user_id"] == alice.id)
        await receiver.wait_for(lambda: created(receiver) >= set(sent), "every message.created")
        await receiver.wait_for(
            lambda: len(receiver.accepted("group.member_added")) >= 3, "the group's members"
        )
        # bob, carol and dave were online for their sends, and left.
        await receiver.wait_for(
            lambda: len(receiver.accepted("user.offline")) >= 4, "everyone offline"
        )

        assert all(d.signed for d in receiver.deliveries)
        assert max(receiver.arrivals().values()) == 1  # no crash: no event sent twice
        alice_online = [
            e for e in receiver.accepted("user.online") if e["data"]["user_id"] == alice.id
        ]
        alice_offline = [
            e for e in receiver.accepted("user.offline") if e["data"]["user_id"] == alice.id
        ]
        assert (len(alice_online), len(alice_offline)) == (1, 1)
        assert {e["data"]["group_id"] for e in receiver.accepted("group.member_added")} == {
            group_id
        }
        # One node sent them all: the lease holder.
        counts = await attempts_by_node(cluster)
        assert sorted(counts)[:2] == [0.0, 0.0] and max(counts) >= len(receiver.deliveries)


async def test_another_node_takes_over_when_the_sender_dies(
    cluster_factory: ClusterFactory,
) -> None:
    # A short lease: another node takes over within seconds.
    async with hooked_cluster(cluster_factory, lease="2") as (cluster, receiver):
        alice, bob, carol, dave = await cluster.register_all("alice", "bob", "carol", "dave")
        before = await send_from_each_node(cluster, alice.id, bob, carol, dave)
        await receiver.wait_for(lambda: created(receiver) >= set(before), "the first events")
        counts = await attempts_by_node(cluster)
        [leader] = [index for index in NODES if counts[index] > 0]

        await cluster.kill(leader)
        survivors = [index for index in NODES if index != leader]
        after = []
        for via, sender in zip(survivors, (bob, carol), strict=True):
            async with ChatClient.connect(cluster.url(via), sender.access_token) as chat:
                ack = await chat.send_direct(alice.id, "after the crash", f"after{via}")
                after.append(ack["message_id"])
        await receiver.wait_for(
            lambda: created(receiver) >= set(before) | set(after),
            "the events committed after the sender died",
        )
        counts = await attempts_by_node(cluster)
        assert [index for index in survivors if counts[index] > 0] != []
        # Only events in flight when the leader died may come twice.
        twice = [event_id for event_id, n in receiver.arrivals().items() if n > 1]
        after_ids = {
            e["id"]
            for e in receiver.accepted("message.created")
            if e["data"]["message_id"] in after and "recipient_id" in e["data"]
        }
        assert not set(twice) & after_ids
