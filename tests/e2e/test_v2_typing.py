"""v2 typing indicators (docs/contract.md, "Rich messages", ``typing``): forwarded to the
other participants only, as the receiver sees the conversation, never stored or replayed,
renewals faster than the server's throttle not forwarded.

That something did not arrive is shown by a later frame on the same path: typing frames
from one connection are forwarded in the order sent, so a later typing frame arriving
first (or next) proves the earlier one was never forwarded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import attrs
import pytest

from hubbub.client import Account, ChatClient, HubbubHTTP
from hubbub.node import Node
from tests.helpers.chat import Frame, attached, drain
from tests.helpers.stream import connect, create_group, event, until_synced
from tests.helpers.users import UserMaker

UNKNOWN = 10**9


@attrs.define
class Room:
    """Alice and Bob with two devices each, Carol, all in one group; Out in none."""

    group_id: int
    alice: Account
    bob: Account
    carol: Account
    out: Account
    alice_phone: ChatClient
    alice_laptop: ChatClient
    bob_phone: ChatClient
    bob_laptop: ChatClient
    carol_chat: ChatClient
    out_chat: ChatClient


@pytest.fixture
async def room(node: Node, http: HubbubHTTP, make_user: UserMaker) -> AsyncIterator[Room]:
    alice, bob, carol, out = [await make_user(n) for n in ("alice", "bob", "carol", "out")]
    group_id = await create_group(http, alice, "room", bob, carol)
    async with AsyncExitStack() as stack:
        chats = []
        for account in (alice, alice, bob, bob, carol, out):
            chat = await stack.enter_async_context(
                ChatClient.connect(node.url, account.access_token)
            )
            chats.append(await attached(chat))
        yield Room(group_id, alice, bob, carol, out, *chats)


def typing_to(account: Account, typer: Account, state: str = "start") -> Frame:
    """The frame ``account`` receives when ``typer`` types to them directly."""
    return {
        "type": "typing",
        "user_id": typer.id,
        "username": typer.username,
        "recipient_id": account.id,
        "state": state,
    }


def typing_in(group_id: int, typer: Account, state: str = "start") -> Frame:
    return {
        "type": "typing",
        "user_id": typer.id,
        "username": typer.username,
        "group_id": group_id,
        "state": state,
    }


async def next_typing(chat: ChatClient) -> Frame:
    return await event(chat, "typing")


async def test_direct_typing_reaches_the_receiver_and_not_the_typer(room: Room) -> None:
    await room.alice_phone.send({"type": "typing", "recipient_id": room.bob.id})
    for chat in (room.bob_phone, room.bob_laptop):
        assert await next_typing(chat) == typing_to(room.bob, room.alice)

    await room.alice_phone.send({"type": "typing", "recipient_id": room.bob.id, "state": "stop"})
    for chat in (room.bob_phone, room.bob_laptop):
        assert await next_typing(chat) == typing_to(room.bob, room.alice, "stop")

    # Bob types back: the first typing frame on each of Alice's connections is his, so
    # hers were never sent to them.
    await room.bob_laptop.send({"type": "typing", "recipient_id": room.alice.id, "state": "start"})
    for chat in (room.alice_phone, room.alice_laptop):
        assert await next_typing(chat) == typing_to(room.alice, room.bob)
    # Nor to Bob's own other device, nor to Carol, who is in neither conversation.
    for chat in (room.bob_phone, room.carol_chat):
        assert [f for f in await drain(chat) if f["type"] == "typing"] == []


async def test_typing_to_someone_with_no_conversation_yet_is_forwarded(room: Room) -> None:
    # Alice and Out share nothing: a first message is typed before the conversation exists.
    await room.alice_laptop.send({"type": "typing", "recipient_id": room.out.id})
    assert await next_typing(room.out_chat) == typing_to(room.out, room.alice)


async def test_group_typing_reaches_the_other_members_only(room: Room) -> None:
    await room.bob_phone.send({"type": "typing", "group_id": room.group_id})
    for chat in (room.alice_phone, room.alice_laptop, room.carol_chat):
        assert await next_typing(chat) == typing_in(room.group_id, room.bob)

    # Carol types next: the first typing frame on Bob's connections is hers.
    await room.carol_chat.send({"type": "typing", "group_id": room.group_id, "state": "start"})
    for chat in (room.bob_phone, room.bob_laptop):
        assert await next_typing(chat) == typing_in(room.group_id, room.carol)
    for chat in (room.alice_phone, room.alice_laptop):
        assert await next_typing(chat) == typing_in(room.group_id, room.carol)
    # Out, no member, got neither: Alice's direct typing to Out is the first that arrives.
    await room.alice_phone.send({"type": "typing", "recipient_id": room.out.id})
    assert await next_typing(room.out_chat) == typing_to(room.out, room.alice)

    await room.bob_phone.send({"type": "typing", "group_id": room.group_id, "state": "stop"})
    assert await next_typing(room.carol_chat) == typing_in(room.group_id, room.bob, "stop")


async def test_typing_refusals(room: Room) -> None:
    await room.alice_phone.send({"type": "typing", "recipient_id": UNKNOWN})
    assert await event(room.alice_phone, "error") == {
        "type": "error",
        "reason": "recipient not found",
    }
    for group_id in (room.group_id, UNKNOWN):
        await room.out_chat.send({"type": "typing", "group_id": group_id})
        assert await event(room.out_chat, "error") == {"type": "error", "reason": "not allowed"}
    # Refused typing reached no member: Alice's next typing in the group is the first.
    await room.alice_phone.send({"type": "typing", "group_id": room.group_id})
    for chat in (room.bob_phone, room.carol_chat):
        assert await next_typing(chat) == typing_in(room.group_id, room.alice)


async def test_a_renewal_faster_than_the_throttle_is_not_forwarded(room: Room) -> None:
    for _ in range(3):
        await room.alice_phone.send({"type": "typing", "recipient_id": room.bob.id})
    await room.alice_phone.send({"type": "typing", "recipient_id": room.bob.id, "state": "stop"})
    await room.alice_phone.send({"type": "typing", "recipient_id": room.bob.id})
    # One start, then the stop (the renewals were dropped), then the start after the stop.
    assert [await next_typing(room.bob_phone) for _ in range(3)] == [
        typing_to(room.bob, room.alice),
        typing_to(room.bob, room.alice, "stop"),
        typing_to(room.bob, room.alice),
    ]

    for _ in range(2):
        await room.carol_chat.send({"type": "typing", "group_id": room.group_id})
    await room.carol_chat.send({"type": "typing", "group_id": room.group_id, "state": "stop"})
    # (Bob's laptop got Alice's direct typing above too: read only the group's.)
    in_group = [
        await room.bob_laptop.receive_where(lambda f: f["type"] == "typing" and "group_id" in f)
        for _ in range(2)
    ]
    assert in_group == [
        typing_in(room.group_id, room.carol),
        typing_in(room.group_id, room.carol, "stop"),
    ]


async def test_typing_is_never_replayed_on_resume(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    group_id = await create_group(http, alice, "pair", bob)
    async with ChatClient.connect(node.url, alice.access_token) as alice_chat:
        await attached(alice_chat)
        async with connect(node.url, bob, since="now") as bob_chat:
            await until_synced(bob_chat)
            first = await alice_chat.send_direct(bob.id, "one", "one")
            cursor = (await event(bob_chat, "message", first["message_id"]))["cursor"]
            await alice_chat.send({"type": "typing", "recipient_id": bob.id})
            live = await next_typing(bob_chat)
            assert live == typing_to(bob, alice) and "cursor" not in live
            await alice_chat.send({"type": "typing", "group_id": group_id})
            assert await next_typing(bob_chat) == typing_in(group_id, alice)
            second = await alice_chat.send_direct(bob.id, "two", "two")
            await event(bob_chat, "message", second["message_id"])
        # Bob is away: typing to him now reaches no one and is not kept.
        await alice_chat.send({"type": "typing", "recipient_id": bob.id, "state": "stop"})
        await alice_chat.send({"type": "typing", "recipient_id": bob.id})
        third = await alice_chat.send_direct(bob.id, "three", "three")
        assert third["status"] == "pending"

    async with connect(node.url, bob, since=cursor) as bob_chat:
        replay, synced = await until_synced(bob_chat)
        assert synced["recovered"] is True
        assert [(f["type"], f.get("message_id")) for f in replay] == [
            ("message", second["message_id"]),
            ("message", third["message_id"]),
        ]
        assert [f for f in await drain(bob_chat) if f["type"] == "typing"] == []
