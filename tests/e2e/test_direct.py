"""Direct messages: delivery, echo and ack, idempotency, offline delivery, read receipts."""

from __future__ import annotations

from hubbub.client import ChatClient, HubbubHTTP
from hubbub.node import Node
from hubbub.storage import NewDirectMessage
from tests.helpers.chat import drain, next_message, v1_fields
from tests.helpers.users import UserMaker, register


async def test_every_device_of_both_users_gets_the_message_and_the_sender_its_ack(
    node: Node, make_user: UserMaker
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    async with (
        ChatClient.connect(node.url, alice.access_token) as alice_phone,
        ChatClient.connect(node.url, alice.access_token) as alice_laptop,
        ChatClient.connect(node.url, bob.access_token) as bob_phone,
        ChatClient.connect(node.url, bob.access_token, placement="header") as bob_laptop,
    ):
        ack = await alice_phone.send_direct(bob.id, "hello bob", "m-1")
        assert ack == {
            "type": "ack",
            "message_id": ack["message_id"],
            "status": "delivered",
            "client_id": "m-1",
        }
        for device in (alice_phone, alice_laptop, bob_phone, bob_laptop):
            message = await next_message(device)
            assert message["message_id"] == ack["message_id"]
            assert message["author_id"] == alice.id
            assert message["author_name"] == alice.username
            assert message["recipient_id"] == bob.id
            assert message["recipient_name"] == bob.username
            assert message["message"] == "hello bob"
            assert message["image_url"] is None
            assert message["timestamp"].endswith("+00:00")


async def test_ack_is_pending_while_the_recipient_is_offline(
    node: Node, make_user: UserMaker
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    async with ChatClient.connect(node.url, alice.access_token) as chat:
        ack = await chat.send_direct(bob.id, "are you there?", "p1")
        assert ack["status"] == "pending"
        echo = await next_message(chat)
        assert echo["status"] == "pending"


async def test_a_resent_client_id_stores_nothing_new_and_gets_the_first_ack(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    async with (
        ChatClient.connect(node.url, alice.access_token) as alice_chat,
        ChatClient.connect(node.url, bob.access_token) as bob_chat,
    ):
        first = await alice_chat.send_direct(bob.id, "once", "same")
        again = await alice_chat.send_direct(bob.id, "once", "same")
        assert again["message_id"] == first["message_id"]
        after = await alice_chat.send_direct(bob.id, "next", "other")
        # Bob receives the message once: the next one he sees is the following message.
        assert (await next_message(bob_chat))["message_id"] == first["message_id"]
        assert (await next_message(bob_chat))["message_id"] == after["message_id"]
    # Another device of the same sender resending is a duplicate too.
    async with ChatClient.connect(node.url, alice.access_token) as other_device:
        from_other = await other_device.send_direct(bob.id, "once", "same")
        assert from_other["message_id"] == first["message_id"]
    history = (await http.get(f"/messages/{bob.id}", alice.access_token)).json()
    assert [m["message"] for m in history] == ["once", "next"]


async def test_offline_messages_arrive_first_in_order_and_authors_are_told(
    node: Node, make_user: UserMaker
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    async with ChatClient.connect(node.url, alice.access_token) as alice_chat:
        acks = [await alice_chat.send_direct(bob.id, f"note {i}", f"n{i}") for i in range(3)]
        assert {ack["status"] for ack in acks} == {"pending"}
        for _ in acks:
            await next_message(alice_chat)  # the echoes

        async with ChatClient.connect(node.url, bob.access_token) as bob_chat:
            await alice_chat.send_direct(bob.id, "live one", "live")
            received = [await next_message(bob_chat) for _ in range(4)]
            assert [m["message"] for m in received] == ["note 0", "note 1", "note 2", "live one"]
            assert [m["message_id"] for m in received[:3]] == [a["message_id"] for a in acks]
            assert {m["status"] for m in received[:3]} == {"delivered"}

            statuses = [v1_fields(await alice_chat.receive_type("status")) for _ in acks]
            assert statuses == [
                {"type": "status", "message_id": ack["message_id"], "status": "delivered"}
                for ack in acks
            ]
        # Delivered messages are not delivered again on the next connect.
        async with ChatClient.connect(node.url, bob.access_token) as bob_again:
            assert await drain(bob_again) == []


async def test_many_offline_messages_page_through_catch_up(
    node: Node, make_user: UserMaker
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    backlog = [NewDirectMessage(alice.id, bob.id, f"n{i}", None) for i in range(450)]
    await node.storage.store_direct_messages(backlog)
    async with ChatClient.connect(node.url, bob.access_token) as bob_chat:
        got = [await next_message(bob_chat) for _ in range(450)]
        assert [m["message"] for m in got] == [f"n{i}" for i in range(450)]
        ids = [m["message_id"] for m in got]
        assert ids == sorted(ids)


async def test_read_receipt_goes_to_the_author_and_only_the_recipient_may_read(
    node: Node, make_user: UserMaker
) -> None:
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    async with (
        ChatClient.connect(node.url, alice.access_token) as alice_chat,
        ChatClient.connect(node.url, bob.access_token) as bob_chat,
        ChatClient.connect(node.url, carol.access_token) as carol_chat,
    ):
        ack = await alice_chat.send_direct(bob.id, "read me", "r1")
        message_id = ack["message_id"]
        for outsider in (alice_chat, carol_chat):
            await outsider.send({"type": "read", "message_id": message_id})
            assert (await outsider.receive_type("error"))["reason"] == "not allowed"
        await bob_chat.send({"type": "read", "message_id": 10**9})
        assert (await bob_chat.receive_type("error"))["reason"] == "not allowed"

        await bob_chat.send({"type": "read", "message_id": message_id})
        receipt = v1_fields(await alice_chat.receive_type("read_receipt"))
        assert receipt == {
            "type": "read_receipt",
            "message_id": message_id,
            "reader_id": bob.id,
            "reader_name": bob.username,
            "author_id": alice.id,
        }
    async with HubbubHTTP(node.url) as http:
        history = (await http.get(f"/messages/{bob.id}", alice.access_token)).json()
    assert history[-1]["status"] == "read"


async def test_error_reasons_of_direct_messages(node_factory, make_user: UserMaker) -> None:
    async with node_factory(direct_rate_limit="2") as limited:
        async with HubbubHTTP(limited.url) as http:
            sender, friend = await register(http, "limited"), await register(http, "friend")
        async with ChatClient.connect(limited.url, sender.access_token) as chat:
            missing = await chat.send_direct(10**9, "hello?", "x1")
            assert missing["reason"] == "recipient not found"
            assert (await chat.send_direct(friend.id, "1", "a"))["type"] == "ack"
            assert (await chat.send_direct(friend.id, "2", "b"))["type"] == "ack"
            refused = await chat.send_direct(friend.id, "3", "c")
            assert refused == {"type": "error", "reason": "rate limit exceeded", "client_id": "c"}
            # Over the limit, a resend of a stored message still gets its first ack.
            late = await chat.send_direct(friend.id, "1", "a")
            assert late["type"] == "ack" and late["status"] == "pending"
            async with HubbubHTTP(limited.url) as http:
                history = (await http.get(f"/messages/{friend.id}", sender.access_token)).json()
            assert [m["message"] for m in history] == ["1", "2"]


async def test_history_pages_backwards_and_returns_oldest_first(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    async with (
        ChatClient.connect(node.url, alice.access_token) as alice_chat,
        ChatClient.connect(node.url, bob.access_token) as bob_chat,
    ):
        ids = []
        for i in range(5):
            sender, to = (alice_chat, bob.id) if i % 2 == 0 else (bob_chat, alice.id)
            ids.append((await sender.send_direct(to, f"m{i}", f"h{i}"))["message_id"])
        await alice_chat.send_direct(carol.id, "not in this conversation", "elsewhere")

    newest = (await http.get(f"/messages/{bob.id}", alice.access_token, limit=2)).json()
    assert [m["message_id"] for m in newest] == ids[3:]
    older = (
        await http.get(f"/messages/{bob.id}", alice.access_token, limit=2, before=ids[3])
    ).json()
    assert [m["message_id"] for m in older] == ids[1:3]
    from_bob = (await http.get(f"/messages/{alice.id}", bob.access_token)).json()
    assert [m["message_id"] for m in from_bob] == ids
    assert set(from_bob[0]) >= {
        "message_id",
        "author_id",
        "author_name",
        "recipient_id",
        "message",
        "image_url",
        "timestamp",
        "status",
    }
    assert (await http.get(f"/messages/{10**9}", alice.access_token)).status_code == 404
    assert (await http.get(f"/messages/{bob.id}", alice.access_token, limit=0)).status_code == 422
    assert (await http.get(f"/messages/{bob.id}")).status_code == 401


async def test_an_author_told_pending_hears_when_the_message_reached_the_recipient_live(
    node: Node, make_user: UserMaker
) -> None:
    """The race a connection that is opening meets: presence has not seen the recipient
    when the message commits (the ack says pending), yet the message reaches the
    recipient's connection live. The author is told of the change, as the contract's
    ``status`` frame promises, and storage reads delivered."""
    alice, bob = await make_user("alice"), await make_user("bob")
    async with (
        ChatClient.connect(node.url, alice.access_token) as alice_chat,
        ChatClient.connect(node.url, bob.access_token) as bob_chat,
    ):
        # Bob's connection is attached once it answers a frame; then presence is made to
        # say what it says at the commit in the race.
        await bob_chat.send({"type": "presence", "user_ids": [alice.id]})
        await bob_chat.receive_type("presence")
        await node.chat.presence.went_offline(bob.id)
        ack = await alice_chat.send_direct(bob.id, "made it?", "race-1")
        assert ack["status"] == "pending"
        assert (await next_message(bob_chat))["message_id"] == ack["message_id"]
        status = await alice_chat.receive_type("status")
        assert (status["message_id"], status["status"]) == (ack["message_id"], "delivered")
        # Messages announced delivered get no status frame: the next one is the fourth's.
        await node.chat.presence.went_online(bob.id)
        second = await alice_chat.send_direct(bob.id, "and this?", "race-2")
        assert second["status"] == "delivered"
        assert (await next_message(bob_chat))["message_id"] == second["message_id"]
        await alice_chat.send_direct(bob.id, "last", "race-3")
        await next_message(bob_chat)
        await node.chat.presence.went_offline(bob.id)
        fourth = await alice_chat.send_direct(bob.id, "again pending", "race-4")
        assert fourth["status"] == "pending"
        status = await alice_chat.receive_type("status")
        assert status["message_id"] == fourth["message_id"]
    stored = await node.storage.direct_message(ack["message_id"])
    assert stored is not None and stored.status == "delivered"
