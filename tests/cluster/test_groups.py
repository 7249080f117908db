"""Group messages across nodes: one delivery per member device whichever node it is on,
and a member added over HTTP on one node receives live on another (docs/contract.md)."""

from __future__ import annotations

from collections import Counter

import pytest

from hubbub.client import Account, ChatClient
from tests.helpers.chat import Frame, counts
from tests.helpers.cluster import Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

A, B, C = range(3)


async def make_group(cluster: Cluster, via: int, admin: Account, *members: Account) -> int:
    """A group created by ``admin`` with ``members`` added, all over HTTP on node ``via``."""
    http = cluster.http(via)
    created = await http.post("/groups/create-group", admin.access_token, params={"name": "crew"})
    assert created.status_code == 200, created.text
    group_id = created.json()["group_id"]
    for member in members:
        await add_member(cluster, via, admin, group_id, member)
    return group_id


async def add_member(
    cluster: Cluster, via: int, admin: Account, group_id: int, member: Account
) -> None:
    added = await cluster.http(via).post(
        f"/groups/{group_id}/add-member", admin.access_token, params={"user_id": member.id}
    )
    assert added.status_code == 200, added.text


async def group_frames_until_all(chat: ChatClient, texts: set[str]) -> list[Frame]:
    """Every frame up to the one that completes the set of group message ``texts``."""
    seen: list[Frame] = []
    missing = set(texts)
    while missing:
        frame = await chat.receive(timeout=10)
        seen.append(frame)
        if frame["type"] == "group_message":
            missing.discard(frame["message"])
    return seen


@pytest.mark.redis_cluster
async def test_each_member_device_on_each_node_gets_each_group_message_once(
    cluster: Cluster,
) -> None:
    ada, bo, cy = await cluster.register_all("ada", "bo", "cy")
    group_id = await make_group(cluster, B, ada, bo, cy)
    async with (
        cluster.connect(ada, A) as ada_a,
        cluster.connect(bo, B) as bo_b,
        cluster.connect(bo, C) as bo_c,
        cluster.connect(cy, C) as cy_c,
    ):
        senders = {"ada": ada_a, "bo": bo_b, "cy": cy_c}
        ids = {"ada": ada.id, "bo": bo.id, "cy": cy.id}
        acks = [
            await chat.send_group(group_id, f"from {name}", f"from-{name}")
            for name, chat in senders.items()
        ]
        assert [(ack["type"], ack["status"]) for ack in acks] == [("ack", "delivered")] * 3
        # One barrier per sender: a doubled frame comes before its sender's barrier.
        barriers = [
            await chat.send_group(group_id, f"end {name}", f"end-{name}")
            for name, chat in senders.items()
        ]
        expected = Counter(ack["message_id"] for ack in acks + barriers)
        devices = {"ada on A": ada_a, "bo on B": bo_b, "bo on C": bo_c, "cy on C": cy_c}
        for device, chat in devices.items():
            seen = await group_frames_until_all(chat, {f"end {name}" for name in senders})
            assert counts(seen, "group_message") == expected, device
            for name in senders:
                from_sender = [
                    frame["message"]
                    for frame in seen
                    if frame["type"] == "group_message" and frame["author_id"] == ids[name]
                ]
                assert from_sender == [f"from {name}", f"end {name}"], device
            assert {frame["group_id"] for frame in seen if frame["type"] == "group_message"} == {
                group_id
            }


@pytest.mark.redis_cluster
async def test_a_member_added_on_one_node_receives_live_on_another(cluster: Cluster) -> None:
    ada, dee = await cluster.register_all("ada", "dee")
    group_id = await make_group(cluster, A, ada)
    async with cluster.connect(ada, A) as ada_a, cluster.connect(dee, C) as dee_c:
        # Node C has no member of the group yet, so nothing there listens to it.
        await add_member(cluster, A, ada, group_id, dee)
        ack = await ada_a.send_group(group_id, "welcome", "welcome")
        assert ack["type"] == "ack", ack
        welcome = await dee_c.receive_type("group_message", timeout=10)
        assert (welcome["message_id"], welcome["message"]) == (ack["message_id"], "welcome")

        reply = await dee_c.send_group(group_id, "thanks", "thanks")
        assert reply["type"] == "ack", reply
        heard = await ada_a.receive_where(
            lambda f: f["type"] == "group_message" and f["message"] == "thanks", timeout=10
        )
        assert heard["message_id"] == reply["message_id"]
