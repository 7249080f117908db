"""Health, the supervision tree, and metrics."""

from __future__ import annotations

from hubbub.client import ChatClient, HubbubHTTP
from hubbub.node import Node
from tests.helpers.users import UserMaker
from tests.helpers.views import find_in_tree


async def test_live_and_ready(http: HubbubHTTP) -> None:
    assert (await http.get("/health/live")).status_code == 200
    ready = await http.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"storage": True}


async def test_supervisor_tree_has_every_node_field(http: HubbubHTTP) -> None:
    tree = (await http.get("/health/supervisor")).json()
    assert tree["name"] == "node"
    names = [child["name"] for child in tree["children"]]
    assert names == [
        "stream-tail",
        "storage-writer",
        "fan-out",
        "stream-sweeper",
        "users",
        "user-waker",
        "groups",
        "keepalive",
        "socket-flusher",
        "http",
        "front-door",
    ]

    def check(entry: dict) -> None:
        assert set(entry) == {"name", "state", "restarts", "mailbox_depth", "children"}
        assert entry["state"] == "running"
        for child in entry["children"]:
            check(child)

    check(tree)


async def test_a_crashed_actor_restarts_and_its_siblings_keep_serving(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    async with (
        ChatClient.connect(node.url, alice.access_token) as alice_chat,
        ChatClient.connect(node.url, bob.access_token) as bob_chat,
    ):
        for chat in (alice_chat, bob_chat):
            await chat.send({"type": "ping"})
            assert (await chat.receive_type("pong"))["type"] == "pong"
        # ensure, not get: an idle user's actor may be parked (engine/chat/users.py).
        actor = await node.users.ensure(alice.id)
        # A message no handler expects is a bug in the sender: the actor crashes.
        actor.tell_nowait(object())

        # Alice's session is closed so she reconnects, rather than left connected but deaf.
        assert await alice_chat.wait_closed() == 1011

        tree = (await http.get("/health/supervisor")).json()
        # Each entry counts its own restarts: the child's rose, its supervisor's did not.
        users = find_in_tree(tree, "users")
        assert users is not None and users["restarts"] == 0
        restarted = find_in_tree(tree, f"user:{alice.id}")
        assert restarted is not None and restarted["restarts"] == 1

        # Bob's actor, a sibling under the same supervisor, still serves him.
        await bob_chat.send({"type": "message", "recipient_id": bob.id, "message": "still here"})
        assert (await bob_chat.receive_type("ack"))["status"] == "delivered"

    metrics = (await http.get("/metrics")).text
    assert 'hubbub_actor_restarts_total{supervisor="users"} 1.0' in metrics

    async with ChatClient.connect(node.url, alice.access_token) as again:
        await again.send({"type": "ping"})
        assert (await again.receive_type("pong"))["type"] == "pong"


async def test_metrics_count_connections_and_frames(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    user = await make_user()
    async with ChatClient.connect(node.url, user.access_token) as chat:
        await chat.send({"type": "ping"})
        await chat.receive_type("pong")
        text = (await http.get("/metrics")).text
        assert "hubbub_ws_connections 1.0" in text
        assert "hubbub_ws_frames_in_total 1.0" in text
