"""Group messages over WebSocket: fan-out, ack, membership, unread sync, read markers."""

from __future__ import annotations

from hubbub.client import Account, ChatClient, HubbubHTTP
from hubbub.node import Node
from hubbub.storage import NewDirectMessage, NewGroupMessage
from tests.helpers.chat import attached, v1_fields
from tests.helpers.stream import tail_has_dispatched
from tests.helpers.users import UserMaker, register


async def make_group(node: Node, admin: Account, *members: Account, name: str = "crew") -> int:
    group = await node.storage.create_group(name, admin.id)
    for member in members:
        await node.storage.add_member(group.id, member.id)
    return group.id


async def test_a_group_message_reaches_every_member_device_and_the_sender_is_acked(
    node: Node, make_user: UserMaker
) -> None:
    ada, bo, cy, outsider = [await make_user(n) for n in ("ada", "bo", "cy", "out")]
    group_id = await make_group(node, ada, bo, cy)
    async with (
        ChatClient.connect(node.url, ada.access_token) as ada_chat,
        ChatClient.connect(node.url, bo.access_token) as bo_phone,
        ChatClient.connect(node.url, bo.access_token) as bo_laptop,
        ChatClient.connect(node.url, cy.access_token) as cy_chat,
        ChatClient.connect(node.url, outsider.access_token) as out_chat,
    ):
        for chat in (ada_chat, bo_phone, bo_laptop, cy_chat, out_chat):
            await attached(chat)
        ack = await ada_chat.send_group(group_id, "hello crew", "g1")
        assert ack == {
            "type": "ack",
            "message_id": ack["message_id"],
            "status": "delivered",
            "client_id": "g1",
        }
        for device in (ada_chat, bo_phone, bo_laptop, cy_chat):
            frame = await device.receive_type("group_message")
            assert frame["group_id"] == group_id
            assert frame["group_name"] == "crew"
            assert frame["message_id"] == ack["message_id"]
            assert (frame["author_id"], frame["author_name"]) == (ada.id, ada.username)
            assert frame["message"] == "hello crew"
            assert frame["timestamp"].endswith("+00:00")
            assert frame["status"] == "delivered"
        # The outsider got nothing: a direct message to them arrives first.
        await ada_chat.send_direct(outsider.id, "barrier", "b")
        assert (await out_chat.receive())["type"] == "message"


async def test_non_members_and_unknown_groups_are_refused(node: Node, make_user: UserMaker) -> None:
    ada, outsider = await make_user("ada"), await make_user("out")
    group_id = await make_group(node, ada)
    async with ChatClient.connect(node.url, outsider.access_token) as chat:
        for target in (group_id, 10**9):
            refused = await chat.send_group(target, "let me in", "x")
            assert refused == {
                "type": "error",
                "reason": "user is not a member of the group",
                "client_id": "x",
            }
    assert await node.storage.group_history(group_id, None, 10) == []


async def test_group_resend_is_idempotent_and_the_rate_limit_applies(
    node_factory, make_user: UserMaker
) -> None:
    async with node_factory(group_rate_limit="3") as small, HubbubHTTP(small.url) as http:
        ada = await register(http, "gada")
        group_id = await make_group(small, ada)
        async with ChatClient.connect(small.url, ada.access_token) as chat:
            first = await chat.send_group(group_id, "one", "same")
            again = await chat.send_group(group_id, "one", "same")
            assert again["message_id"] == first["message_id"]
            assert (await chat.send_group(group_id, "two", "two"))["type"] == "ack"
            refused = await chat.send_group(group_id, "three", "three")
            assert refused["reason"] == "rate limit exceeded"
            # Over the limit, a resend of a stored message still gets its first ack.
            late = await chat.send_group(group_id, "one", "same")
            assert (late["type"], late["message_id"]) == ("ack", first["message_id"])
        history = await small.storage.group_history(group_id, None, 10)
        assert [m.body for m in history] == ["one", "two"]


async def test_connect_sends_pending_direct_then_unread_group_messages_before_live(
    node: Node, make_user: UserMaker
) -> None:
    ada, bo = await make_user("ada"), await make_user("bo")
    group_id = await make_group(node, ada, bo)
    storage = node.storage
    await storage.store_direct_messages([NewDirectMessage(ada.id, bo.id, "direct", None)])
    stored = await storage.store_group_messages(
        [NewGroupMessage(group_id, ada.id, f"g{i}", None) for i in range(3)]
    )
    await storage.advance_group_read(group_id, bo.id, stored[0].message.id)
    await tail_has_dispatched(node)  # stored before bo connects, not live
    async with ChatClient.connect(node.url, ada.access_token) as ada_chat:
        await attached(ada_chat)
        async with ChatClient.connect(node.url, bo.access_token) as bo_chat:
            await ada_chat.send_group(group_id, "live", "live")
            got = [await bo_chat.receive() for _ in range(4)]
    assert [(f["type"], f["message"]) for f in got] == [
        ("message", "direct"),
        ("group_message", "g1"),
        ("group_message", "g2"),
        ("group_message", "live"),
    ]


async def test_unread_sync_is_capped_at_the_newest_hundred(
    node: Node, make_user: UserMaker
) -> None:
    ada, bo = await make_user("ada"), await make_user("bo")
    group_id = await make_group(node, ada, bo)
    await node.storage.store_group_messages(
        [NewGroupMessage(group_id, ada.id, f"m{i}", None) for i in range(130)]
    )
    await tail_has_dispatched(node)
    async with ChatClient.connect(node.url, bo.access_token) as bo_chat:
        got = [await bo_chat.receive_type("group_message") for _ in range(100)]
        assert [f["message"] for f in got] == [f"m{i}" for i in range(30, 130)]
        await bo_chat.send({"type": "ping"})
        assert (await bo_chat.receive())["type"] == "pong"


async def test_group_read_advances_never_backwards_and_members_are_told(
    node: Node, make_user: UserMaker
) -> None:
    ada, bo, outsider = await make_user("ada"), await make_user("bo"), await make_user("out")
    group_id = await make_group(node, ada, bo)
    async with (
        ChatClient.connect(node.url, ada.access_token) as ada_chat,
        ChatClient.connect(node.url, bo.access_token) as bo_chat,
        ChatClient.connect(node.url, outsider.access_token) as out_chat,
    ):
        await attached(bo_chat)
        ids = [
            (await ada_chat.send_group(group_id, f"m{i}", f"c{i}"))["message_id"] for i in range(3)
        ]
        await bo_chat.send({"type": "group_read", "group_id": group_id, "message_id": ids[1]})
        marker = v1_fields(await ada_chat.receive_type("group_read"))
        assert marker == {
            "type": "group_read",
            "group_id": group_id,
            "user_id": bo.id,
            "message_id": ids[1],
        }
        await bo_chat.send({"type": "group_read", "group_id": group_id, "message_id": ids[0]})
        assert (await ada_chat.receive_type("group_read"))["message_id"] == ids[1]
        await bo_chat.send({"type": "group_read", "group_id": group_id, "message_id": 10**12})
        assert (await ada_chat.receive_type("group_read"))["message_id"] == ids[2]

        await out_chat.send({"type": "group_read", "group_id": group_id, "message_id": ids[2]})
        assert (await out_chat.receive_type("error"))["reason"] == "not allowed"
    member = await node.storage.member(group_id, bo.id)
    assert member is not None and member.last_read_message_id == ids[2]


async def test_presence_reaches_group_co_members(node: Node, make_user: UserMaker) -> None:
    ada, bo = await make_user("ada"), await make_user("bo")
    await make_group(node, ada, bo)
    async with ChatClient.connect(node.url, ada.access_token) as ada_chat:
        await attached(ada_chat)
        async with ChatClient.connect(node.url, bo.access_token):
            online = await ada_chat.receive_type("presence")
            assert (online["user_id"], online["presence_status"]) == (bo.id, "online")
        offline = await ada_chat.receive_type("presence")
        assert (offline["user_id"], offline["presence_status"]) == (bo.id, "offline")


async def test_a_member_added_while_online_receives_without_reconnecting(
    node: Node, make_user: UserMaker
) -> None:
    ada, bo = await make_user("ada"), await make_user("bo")
    group_id = await make_group(node, ada)
    async with (
        ChatClient.connect(node.url, ada.access_token) as ada_chat,
        ChatClient.connect(node.url, bo.access_token) as bo_chat,
    ):
        await attached(ada_chat)
        await attached(bo_chat)
        await node.storage.add_member(group_id, bo.id)
        await node.chat.membership_changed(group_id)
        await ada_chat.send_group(group_id, "welcome", "w")
        assert (await bo_chat.receive_type("group_message"))["message"] == "welcome"

        await node.storage.remove_member(group_id, bo.id)
        await node.chat.membership_changed(group_id)
        await ada_chat.send_group(group_id, "bye", "bye")
        await ada_chat.send_direct(bo.id, "barrier", "barrier")
        assert (await bo_chat.receive())["message"] == "barrier"
