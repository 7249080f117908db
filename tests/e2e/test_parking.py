"""A UserActor whose sessions sit idle parks (no task, no mailbox) and still delivers.

``Chat.user_park_after`` is lowered so the actor parks within the test. Parking shows only
by asking (the actor's absence from the registry, its presence among the parked): those
states are polled; frames are awaited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson

from hubbub.client import ChatClient
from hubbub.engine.chat.blocks import BLOCKS_CHANGED
from hubbub.engine.chat.ports import Event
from hubbub.node import Node
from tests.helpers.chat import attached, frames_until, is_type, next_message
from tests.helpers.polling import poll_until
from tests.helpers.users import UserMaker

PARK_AFTER = 0.05


def parked(node: Node, user_id: int) -> bool:
    return node.users.get(user_id) is None and node.chat.local_users.parked(user_id) is not None


async def until_parked(node: Node, user_id: int, what: str = "alice parking") -> None:
    await poll_until(lambda: parked(node, user_id), what=what, timeout=10)


@asynccontextmanager
async def alice_parked(node: Node, make_user: UserMaker) -> AsyncIterator[tuple[int, ChatClient]]:
    """Alice connected once, her actor parked: her id and her connection."""
    node.chat.user_park_after = PARK_AFTER
    alice = await make_user("alice")
    async with ChatClient.connect(node.url, alice.access_token) as chat:
        await attached(chat)
        await until_parked(node, alice.id)
        yield alice.id, chat


async def test_a_parked_user_gets_live_messages_at_once_in_order_without_waking(
    node: Node, make_user: UserMaker
) -> None:
    node.chat.user_park_after = PARK_AFTER
    alice, bob = await make_user("alice"), await make_user("bob")
    async with (
        ChatClient.connect(node.url, alice.access_token) as alice_chat,
        ChatClient.connect(node.url, bob.access_token) as bob_chat,
    ):
        await attached(alice_chat)
        await attached(bob_chat)
        await until_parked(node, alice.id)
        acks = [await bob_chat.send_direct(alice.id, f"m{n}", f"c{n}") for n in range(5)]
        assert [ack["status"] for ack in acks] == ["delivered"] * 5
        received = [await next_message(alice_chat) for _ in range(5)]
        assert [m["message"] for m in received] == [f"m{n}" for n in range(5)]
        assert [m["message_id"] for m in received] == [ack["message_id"] for ack in acks]
        # Delivered by the parked actor itself: it did not need its task for that.
        assert node.chat.local_users.parked(alice.id) is not None
        assert set(node.chat.local_users.with_sessions()) == {alice.id, bob.id}


async def test_a_second_device_wakes_a_parked_user_and_gets_its_replay_before_live_events(
    node: Node, make_user: UserMaker
) -> None:
    node.chat.user_park_after = PARK_AFTER
    node.chat.user_idle_timeout = 0.1
    alice, bob = await make_user("alice"), await make_user("bob")
    async with (
        ChatClient.connect(node.url, alice.access_token, since="now") as phone,
        ChatClient.connect(node.url, bob.access_token) as bob_chat,
    ):
        cursor = (await phone.receive_type("synced"))["cursor"]
        await attached(phone)
        await attached(bob_chat)
        await until_parked(node, alice.id)
        for n in range(3):
            await bob_chat.send_direct(alice.id, f"before {n}", f"b{n}")
        assert [(await next_message(phone))["message"] for _ in range(3)] == [
            f"before {n}" for n in range(3)
        ]
        async with ChatClient.connect(node.url, alice.access_token, since=cursor) as laptop:
            replay = await frames_until(laptop, is_type("synced"))
            assert [f["message"] for f in replay if f["type"] == "message"] == [
                f"before {n}" for n in range(3)
            ]
            assert replay[-1]["recovered"] is True
            await bob_chat.send_direct(alice.id, "after", "a")
            for device in (phone, laptop):
                assert (await next_message(device))["message"] == "after"
            # The laptop got nothing twice: the next frame it reads answers its ping.
            await laptop.send({"type": "ping"})
            assert (await laptop.receive())["type"] == "pong"
            await until_parked(node, alice.id, "parking again")
        # The laptop's detach woke the parked actor, which let go of that session only.
        await poll_until(
            lambda: (
                len(node.chat.local_users.parked(alice.id).sessions) == 1
                if parked(node, alice.id)
                else False
            ),
            what="the laptop detached",
            timeout=10,
        )
        await bob_chat.send_direct(alice.id, "still here", "s")
        assert (await next_message(phone))["message"] == "still here"
    # The last session gone, the user is gone too: no actor, none parked, no subscription.
    await poll_until(
        lambda: (
            node.users.get(alice.id) is None
            and node.chat.local_users.parked(alice.id) is None
            and f"user:{alice.id}" not in node.chat.bus.channels()
        ),
        what="alice leaving the node",
        timeout=10,
    )


async def test_a_disconnect_closes_a_parked_users_sessions(
    node: Node, make_user: UserMaker
) -> None:
    async with alice_parked(node, make_user) as (alice_id, chat):
        await node.chat.disconnect(alice_id)
        assert await chat.wait_closed() == 1008


async def test_work_held_for_a_waking_user_and_the_events_after_it_keep_their_order(
    node: Node, make_user: UserMaker
) -> None:
    async with alice_parked(node, make_user) as (alice_id, chat):
        actor = node.chat.local_users.parked(alice_id)
        # No checkpoint between these: the work wakes the user, and the frames after it
        # are held behind it until the successor has taken over, then come in order.
        actor.on_event(Event(BLOCKS_CHANGED, b"", actor_id=alice_id))
        for n in range(5):
            actor.on_event(Event("presence", orjson.dumps({"type": "note", "n": n})))
        assert node.chat.local_users.parked(alice_id).waiting
        notes = [await chat.receive_type("note") for _ in range(5)]
        assert [note["n"] for note in notes] == list(range(5))
        await until_parked(node, alice_id, "parking again")
