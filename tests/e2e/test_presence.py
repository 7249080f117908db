"""Presence: events to related users only, the query frame, and the HTTP views."""

from __future__ import annotations

from hubbub.client import ChatClient, HubbubHTTP
from hubbub.node import Node
from tests.helpers.chat import attached, next_message
from tests.helpers.polling import poll_until
from tests.helpers.users import UserMaker
from tests.helpers.views import online_view


async def test_presence_events_reach_conversation_partners_and_no_one_else(
    node: Node, make_user: UserMaker
) -> None:
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    async with (
        ChatClient.connect(node.url, alice.access_token) as alice_chat,
        ChatClient.connect(node.url, carol.access_token) as carol_chat,
    ):
        await alice_chat.send_direct(bob.id, "we have a conversation now", "c1")
        async with ChatClient.connect(node.url, bob.access_token) as bob_chat:
            online = await alice_chat.receive_type("presence")
            assert online == {
                "type": "presence",
                "user_id": bob.id,
                "username": bob.username,
                "presence_status": "online",
                "last_seen_iso": None,
            }
            await bob_chat.receive_type("message")  # the offline message
        offline = await alice_chat.receive_type("presence")
        assert offline["user_id"] == bob.id
        assert offline["presence_status"] == "offline"
        assert offline["last_seen_iso"] is not None

        # Carol shares nothing with Bob. Anything published to her before this message
        # would have passed through her mailbox first: she got no presence frame.
        await alice_chat.send_direct(carol.id, "barrier", "c2")
        received = []
        while True:
            frame = await carol_chat.receive()
            received.append(frame["type"])
            if frame["type"] == "message":
                break
        assert "presence" not in received


async def test_presence_query_answers_each_known_user(node: Node, make_user: UserMaker) -> None:
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    async with (
        ChatClient.connect(node.url, alice.access_token) as alice_chat,
        ChatClient.connect(node.url, bob.access_token) as bob_chat,
    ):
        await attached(bob_chat)  # a session answers frames only once online
        await alice_chat.send({"type": "presence", "user_ids": [bob.id, carol.id, 10**9]})
        answers = [await alice_chat.receive_type("presence") for _ in range(2)]
        by_user = {answer["user_id"]: answer for answer in answers}
        assert by_user[bob.id]["presence_status"] == "online"
        assert by_user[bob.id]["last_seen_iso"] is None
        assert by_user[carol.id]["presence_status"] == "offline"


async def test_http_presence_and_online_list(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    async with ChatClient.connect(node.url, bob.access_token) as bob_chat:
        await attached(bob_chat)
        online = (await http.get("/users/online", alice.access_token)).json()
        assert online == {"online": [bob.id]}
        bob_now = (await http.get(f"/users/presence/{bob.id}", alice.access_token)).json()
        assert bob_now["presence_status"] == "online"
        assert bob_now["last_seen"] is None
        me = (await http.get("/users/me", bob.access_token)).json()
        assert me["presence_status"] == "online"
    # Going offline is asynchronous to the client's close: wait for the effect.
    async with ChatClient.connect(node.url, alice.access_token) as alice_chat:
        await alice_chat.send_direct(alice.id, "note to self", "self")
        await next_message(alice_chat)

        async def only_alice_online() -> bool:
            return await online_view(http, alice) == [alice.id]

        await poll_until(only_alice_online, what="bob going offline", timeout=5)
    bob_later = (await http.get(f"/users/presence/{bob.id}", alice.access_token)).json()
    assert bob_later["presence_status"] == "offline"
    assert bob_later["last_seen"] is not None
    assert (await http.get(f"/users/presence/{10**9}", alice.access_token)).status_code == 404
    assert (await http.get("/users/online")).status_code == 401


async def test_a_user_actor_that_stopped_leaves_no_subscription_behind(
    node: Node, make_user: UserMaker
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    node.chat.user_idle_timeout = 0.1
    async with ChatClient.connect(node.url, alice.access_token) as alice_chat:
        await alice_chat.send_direct(bob.id, "so we are related", "r")
    # The actor stops by itself; nothing to wait on but its absence.
    await poll_until(
        lambda: node.users.get(alice.id) is None, what="alice's actor stopping", timeout=10
    )
    assert f"user:{alice.id}" not in node.chat.bus.channels()
    # Bob's coming online is announced to Alice's channel: nobody holds it any more.
    async with ChatClient.connect(node.url, bob.access_token) as bob_chat:
        await bob_chat.send({"type": "ping"})
        assert (await bob_chat.receive_type("pong"))["type"] == "pong"
    async with HubbubHTTP(node.url) as http:
        tree = (await http.get("/health/supervisor")).json()
    assert all(child["restarts"] == 0 for child in tree["children"])
