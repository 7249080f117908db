"""Blocks across nodes (docs/integrations.md, "Block and mute"): a block set through one
node refuses the blocked user's sends on another and stops presence and typing between
nodes, both ways; lifting it restores them.

How a test knows a change reached another node without sleeping: the node that takes the
block announces it on the bus, and what that node publishes afterwards reaches the other
node after it, in order, on the same Redis connection. The UserActor there re-reads the
relations before it hands on anything queued behind the announcement. So once a frame
published later by the same node arrives (a third user's typing), the change has taken
effect there, and a frame that was filtered would have come before it.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
import trio

from hubbub.client import Account, ChatClient, HubbubHTTP
from tests.helpers.chat import Frame, drain
from tests.helpers.cluster import NODES, Cluster
from tests.helpers.polling import poll_until
from tests.helpers.stream import event

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

A, B, C = range(3)


async def call(http: HubbubHTTP, method: str, path: str, token: str) -> httpx.Response:
    return await http.http.request(method, path, headers={"Authorization": f"Bearer {token}"})


async def set_block(cluster: Cluster, via: int, who: Account, whom: Account, on: bool) -> None:
    method = "POST" if on else "DELETE"
    response = await call(cluster.http(via), method, f"/users/{whom.id}/block", who.access_token)
    assert response.status_code == 204, response.text


def typing_from(frames: list[Frame]) -> list[int]:
    return [frame["user_id"] for frame in frames if frame["type"] == "typing"]


def presence_from(frames: list[Frame]) -> list[int]:
    return [frame["user_id"] for frame in frames if frame["type"] == "presence"]


async def first_typing(chat: ChatClient) -> tuple[int, list[Frame]]:
    """Who the next typing frame is from, and every frame received before it."""
    frame = await event(chat, "typing")
    return frame["user_id"], await drain(chat)


async def test_a_block_set_on_one_node_refuses_sends_and_typing_on_another(
    cluster: Cluster,
) -> None:
    ann, cid, bob, dan = await cluster.register_all("ann", "cid", "bob", "dan")
    async with (
        cluster.connect(ann, A) as ann_a,
        cluster.connect(cid, A) as cid_a,
        cluster.connect(bob, B) as bob_b,
        cluster.connect(dan, B) as dan_b,
    ):
        before = await bob_b.send_direct(ann.id, "hello", "b1")
        assert before["type"] == "ack"
        await event(ann_a, "message", before["message_id"])
        await typing_passes(ann_a, ann, bob_b, bob)  # it passes, before

        await set_block(cluster, A, ann, bob, on=True)
        # Ann's typing, then Cid's, from node A to Bob on node B: Cid's comes first, and
        # once it has, node B knows of the block.
        await ann_a.typing(recipient_id=bob.id)
        await cid_a.typing(recipient_id=bob.id)
        typer, _ = await first_typing(bob_b)
        assert typer == cid.id
        refused = await bob_b.send_direct(ann.id, "are you there?", "b2")
        assert refused == {"type": "error", "reason": "not allowed", "client_id": "b2"}
        # The other way: Bob's typing, then Dan's, from node B to Ann on node A.
        await bob_b.typing(recipient_id=ann.id)
        await dan_b.typing(recipient_id=ann.id)
        typer, _ = await first_typing(ann_a)
        assert typer == dan.id
        # Ann never got the refused message; its history holds only the first.
        assert [f for f in await drain(ann_a) if f["type"] == "message"] == []
        history = (await cluster.http(C).get(f"/messages/{bob.id}", ann.access_token)).json()
        assert [m["message_id"] for m in history] == [before["message_id"]]

        # Lifted on node A again: Cid's next typing after the change is the barrier.
        await set_block(cluster, A, ann, bob, on=False)
        await cid_a.typing(recipient_id=bob.id, state="stop")
        assert (await event(bob_b, "typing"))["user_id"] == cid.id
        after = await bob_b.send_direct(ann.id, "sorry", "b3")
        assert after["type"] == "ack"
        assert (await event(ann_a, "message", after["message_id"]))["message"] == "sorry"


async def test_presence_does_not_pass_between_nodes_while_blocked(cluster: Cluster) -> None:
    ann, cid, bob, dan = await cluster.register_all("ann", "cid", "bob", "dan")
    # Conversations: Bob with Ann and Cid; Dan with Ann. Each hears of the others.
    async with cluster.connect(bob, B) as bob_b, cluster.connect(dan, B) as dan_b:
        await bob_b.send_direct(ann.id, "hi", "b1")
        await bob_b.send_direct(cid.id, "hi", "b2")
        await dan_b.send_direct(ann.id, "hi", "d1")
    # Set on node C, where neither is connected: it is in storage before anyone connects.
    await set_block(cluster, C, ann, bob, on=True)

    async with (
        cluster.connect(ann, A) as ann_a,
        cluster.connect(cid, A) as cid_a,
        cluster.connect(dan, B) as dan_b,
    ):
        async with cluster.connect(bob, B) as bob_b:
            # Bob's online went out from node B (to Ann and Cid at once) before Dan's
            # typing: Cid hears it, and Ann saw no presence of Bob before Dan's typing.
            await presence_event(cid_a, bob, "online")
            await dan_b.typing(recipient_id=ann.id)
            typer, earlier = await first_typing(ann_a)
            assert typer == dan.id
            assert bob.id not in presence_from(earlier)
            # Asked on either node, each sees the other offline, with no last seen.
            await bob_b.send({"type": "presence", "user_ids": [ann.id]})
            answer = await event(bob_b, "presence")
            assert (answer["user_id"], answer["presence_status"]) == (ann.id, "offline")
            assert answer["last_seen_iso"] is None
            for via, viewer, other in ((A, bob, ann), (C, ann, bob)):
                http = cluster.http(via)
                path = f"/users/presence/{other.id}"
                seen: Any = (await http.get(path, viewer.access_token)).json()
                assert (seen["presence_status"], seen["last_seen"]) == ("offline", None)
                online = (await http.get("/users/online", viewer.access_token)).json()["online"]
                assert other.id not in online
            online = (await cluster.http(C).get("/users/online", dan.access_token)).json()
            assert {ann.id, bob.id} <= set(online["online"])
        # Bob's offline went out to Ann and Cid at once; once Cid has it, Dan types.
        await presence_event(cid_a, bob, "offline")
        await dan_b.typing(recipient_id=ann.id, state="stop")
        typer, earlier = await first_typing(ann_a)
        assert typer == dan.id
        assert bob.id not in presence_from(earlier)


async def presence_event(chat: ChatClient, user: Account, status: str) -> Frame:
    return await chat.receive_where(
        lambda f: (
            f["type"] == "presence" and f["user_id"] == user.id and f["presence_status"] == status
        ),
        timeout=10,
    )


async def test_a_block_set_while_redis_is_down_takes_effect_once_it_is_back(
    cluster: Cluster,
) -> None:
    ann, cid, bob = await cluster.register_all("ann", "cid", "bob")
    async with (
        cluster.connect(ann, A) as ann_a,
        cluster.connect(cid, A) as cid_a,
        cluster.connect(bob, B) as bob_b,
    ):
        hello = await bob_b.send_direct(ann.id, "hello", "b1")
        assert hello["type"] == "ack"
        await event(ann_a, "message", hello["message_id"])
        cluster.redis.kill()
        await poll_until(
            lambda: all_ready(cluster, 503), what="every node answering 503", timeout=15
        )
        # Committed, but announced to no other node: the bus is down.
        await set_block(cluster, A, ann, bob, on=True)
        cluster.redis.start()
        await poll_until(lambda: all_ready(cluster, 200), what="every node ready", timeout=30)

        # Node B re-read Bob's relations when its bus came back, before handing on anything
        # that came over the new connection: once Cid's typing (sent from node A after
        # the restart) reaches Bob, the block is in force there.
        await typing_passes(cid_a, cid, bob_b, bob)
        refused = await bob_b.send_direct(ann.id, "are you there?", "b2")
        assert refused == {"type": "error", "reason": "not allowed", "client_id": "b2"}
        assert [f for f in await drain(ann_a) if f["type"] == "message"] == []


async def all_ready(cluster: Cluster, status: int) -> bool:
    return all([await cluster.ready_status(index) == status for index in range(NODES)])


async def typing_passes(
    typer_chat: ChatClient, typer: Account, receiver_chat: ChatClient, receiver: Account
) -> None:
    """Wait until ``typer``'s direct typing reaches ``receiver``, typing again until one
    gets through (right after a connect or a Redis restart, the receiver's channel may not
    be subscribed everywhere yet, and typing is never stored). Starts and stops alternate,
    so the throttle forwards each; it ends stopped, so the typer's next start is forwarded.
    """
    turns = itertools.count()
    stopped = True

    async def through() -> bool:
        nonlocal stopped
        stopped = next(turns) % 2 == 1
        await typer_chat.typing(recipient_id=receiver.id, state="stop" if stopped else "start")
        try:
            await receiver_chat.receive_where(
                lambda f: f["type"] == "typing" and f["user_id"] == typer.id, timeout=2
            )
        except trio.TooSlowError:
            return False
        return True

    await poll_until(through, what=f"typing from {typer.username} arriving", timeout=30)
    if not stopped:
        await typer_chat.typing(recipient_id=receiver.id, state="stop")
        frame = await event(receiver_chat, "typing")
        assert (frame["user_id"], frame["state"]) == (typer.id, "stop")
